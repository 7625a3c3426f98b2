// Package poolaccess hands a Store's connection pool to storetest, so that
// integration tests can run raw SQL against the database they set up. It
// sits under internal/store/internal, so only packages inside internal/store
// can import it: the API, the exporter and the processor reach PostgreSQL
// through the Store's methods, never through the pool.
package poolaccess

import "github.com/jackc/pgx/v5/pgxpool"

// Of returns the pool of a *store.Store. The store package sets it at init
// (it takes any because this package cannot import store).
var Of func(store any) *pgxpool.Pool
