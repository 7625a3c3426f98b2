package synth

import (
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/driftlock/driftlock/internal/replay"
)

// log produces one log line of service: a handful of templates per
// service with volatile fields (ids, durations, amounts), like a real
// application's steady state. During an exception fault the service logs
// a connection-pool exception it never logged before.
func (g *Generator) log(service string, t time.Time, faulty bool) replay.Record {
	r := replay.Record{Severity: plog.SeverityNumberInfo, SeverityText: "INFO"}
	g.ids(&r)
	if faulty {
		r.Severity, r.SeverityText = plog.SeverityNumberError, "ERROR"
		r.Body = fmt.Sprintf("failed to place order %d: java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, request timed out after %dms. at com.zaxxer.hikari.pool.HikariPool.createTimeoutException(HikariPool.java:696)",
			100000+g.rng.IntN(900000), 30000+g.rng.IntN(3))
		return r
	}
	ms := int(g.lognormal(25, 0.4))
	user := 1000 + g.rng.IntN(9000)
	switch service {
	case "frontend":
		switch g.rng.IntN(3) {
		case 0:
			r.Body = fmt.Sprintf("GET /api/products/%d 200 %dms user=%d", 1+g.rng.IntN(500), ms, user)
		case 1:
			r.Body = fmt.Sprintf("GET /api/cart 200 %dms session=%s", ms, g.hex(16))
		default:
			r.Body = fmt.Sprintf("POST /api/checkout 302 %dms user=%d", ms, user)
		}
	case "checkout":
		order := 100000 + g.rng.IntN(900000)
		switch g.rng.IntN(4) {
		case 0:
			r.Body = fmt.Sprintf("order %d created for user %d total=%d.%02d currency=USD items=%d", order, user, 5+g.rng.IntN(300), g.rng.IntN(100), 1+g.rng.IntN(6))
		case 1:
			r.Body = fmt.Sprintf("reserved %d items for order %d in %dms", 1+g.rng.IntN(6), order, ms)
		case 2:
			r.Body = fmt.Sprintf("payment authorized for order %d txn=%s", order, g.hex(12))
		default:
			r.Body = fmt.Sprintf("order %d confirmation email queued", order)
		}
	case "payment":
		txn := g.hex(12)
		switch g.rng.IntN(2) {
		case 0:
			r.Body = fmt.Sprintf("charge %s amount=%d.%02d card=****%04d approved in %dms", txn, 5+g.rng.IntN(300), g.rng.IntN(100), g.rng.IntN(10000), ms)
		default:
			r.Body = fmt.Sprintf("fraud check passed for %s score=0.%02d", txn, g.rng.IntN(30))
		}
	case "inventory":
		sku := fmt.Sprintf("SKU-%05d", g.rng.IntN(20000))
		switch g.rng.IntN(2) {
		case 0:
			r.Body = fmt.Sprintf("stock lookup sku=%s warehouse=wh-%d available=%d", sku, 1+g.rng.IntN(4), g.rng.IntN(500))
		default:
			r.Body = fmt.Sprintf("reservation %s committed sku=%s qty=%d", g.hex(8), sku, 1+g.rng.IntN(5))
		}
	default:
		r.Body = fmt.Sprintf("handled request %s in %dms", g.hex(8), ms)
	}
	return r
}
