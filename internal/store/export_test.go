package store

// InsertAnomaliesCopy exposes the COPY variant to the benchmark.
var InsertAnomaliesCopy = (*Store).insertAnomaliesCopy
