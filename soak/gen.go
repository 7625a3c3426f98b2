package soak

import (
	"fmt"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// SeqKey is the attribute carrying each soak record's sequence number. It
// makes every record distinct (so its store fingerprint is unique) and lets
// the check name the records that went missing.
const SeqKey = "soak.seq"

// InjectedKey marks the records carrying an injected anomaly.
const InjectedKey = "soak.injected"

// Generator makes the soak traffic: services logging from a fixed set of
// templates with volatile values, and, every InjectEvery records after
// InjectAfter, a record of a kind its service never logged before.
type Generator struct {
	Services    int
	InjectAfter int
	InjectEvery int

	rng *rand.Rand
	seq int
}

// NewGenerator returns a deterministic generator (seeded PCG).
func NewGenerator(services, injectAfter, injectEvery int) *Generator {
	return &Generator{Services: services, InjectAfter: injectAfter, InjectEvery: injectEvery,
		rng: rand.New(rand.NewPCG(42, 4242))}
}

var normalTemplates = []string{
	"GET /api/v1/items/%d 200 %dms",
	"POST /api/v1/cart/%d 201 %dms",
	"user %d logged in from 10.0.%d.17",
	"cache hit for key item:%d (age %ds)",
	"db query SELECT items WHERE id=%d took %dms",
	"published event order.created id=%d partition=%d",
}

var novelTemplates = []string{
	"panic: runtime error: index out of range [%d] with length %d",
	"FATAL could not open segment file /var/lib/data/%d.seg: errno %d (no space left on device)",
	"java.lang.OutOfMemoryError: Java heap space at com.shop.Cache.grow(Cache.java:%d) thread=%d",
	"TLS handshake failed: x509: certificate signed by unknown authority (serial %d, depth %d)",
	"kernel: oom-killer invoked, killed process %d (worker) total-vm:%dkB",
}

// Injected reports whether record seq carries an injected anomaly.
func (g *Generator) Injected(seq int) bool {
	return g.InjectEvery > 0 && seq >= g.InjectAfter && (seq-g.InjectAfter)%g.InjectEvery == 0
}

// Next returns the next n records as one request (one resource per
// service), stamped now.
func (g *Generator) Next(n int, now time.Time) (plog.Logs, int) {
	ld := plog.NewLogs()
	scopes := make([]plog.LogRecordSlice, g.Services)
	for s := range g.Services {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", fmt.Sprintf("soak-svc-%02d", s))
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName("soak")
		scopes[s] = sl.LogRecords()
	}
	injected := 0
	ts := pcommon.NewTimestampFromTime(now)
	for range n {
		seq := g.seq
		g.seq++
		s := g.rng.IntN(g.Services)
		lr := scopes[s].AppendEmpty()
		lr.SetTimestamp(ts)
		lr.SetObservedTimestamp(ts)
		lr.Attributes().PutInt(SeqKey, int64(seq))
		a, b := g.rng.IntN(100000), g.rng.IntN(900)+1
		if g.Injected(seq) {
			injected++
			lr.SetSeverityNumber(plog.SeverityNumberError)
			lr.SetSeverityText("ERROR")
			lr.Attributes().PutBool(InjectedKey, true)
			lr.Body().SetStr(fmt.Sprintf(novelTemplates[(seq/g.InjectEvery)%len(novelTemplates)], a, b))
			continue
		}
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
		lr.Body().SetStr(fmt.Sprintf(normalTemplates[g.rng.IntN(len(normalTemplates))], a, b))
	}
	return ld, injected
}

// Seq is the number of records generated so far.
func (g *Generator) Seq() int { return g.seq }
