package store

// InsertAnomaliesCopy exposes the COPY variant to the benchmark.
var InsertAnomaliesCopy = (*Store).insertAnomaliesCopy

// SetMaxStatementBytes lowers the statement split size for a test.
func SetMaxStatementBytes(n int) (restore func()) {
	old := maxStatementBytes
	maxStatementBytes = n
	return func() { maxStatementBytes = old }
}

// InsertLockKey is the advisory lock key writers serialize on.
const InsertLockKey = insertLockKey
