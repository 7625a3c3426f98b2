package synth

import (
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/driftlock/driftlock/internal/replay"
)

type op struct {
	name, method, route, db string
	kind                    ptrace.SpanKind
	medianMS                float64
}

var ops = map[string][]op{
	"frontend":  {{"GET /api/products/{id}", "GET", "/api/products/{id}", "", ptrace.SpanKindServer, 30}, {"GET /api/cart", "GET", "/api/cart", "", ptrace.SpanKindServer, 20}},
	"checkout":  {{"POST /api/orders", "POST", "/api/orders", "", ptrace.SpanKindServer, 80}, {"INSERT orders", "", "", "postgresql", ptrace.SpanKindClient, 5}},
	"payment":   {{"POST /api/charge", "POST", "/api/charge", "", ptrace.SpanKindServer, 60}},
	"inventory": {{"GET /api/stock/{sku}", "GET", "/api/stock/{sku}", "", ptrace.SpanKindServer, 15}, {"SELECT inventory", "", "", "postgresql", ptrace.SpanKindClient, 3}},
}

// span produces one span of service. During an error_spans fault the
// service's calls fail with 503 after a 5 s upstream timeout.
func (g *Generator) span(service string, t time.Time, faulty bool) replay.Record {
	r := replay.Record{Attrs: map[string]any{}}
	g.ids(&r)
	list := ops[service]
	if len(list) == 0 {
		list = []op{{"handle", "", "", "", ptrace.SpanKindInternal, 10}}
	}
	o := list[g.rng.IntN(len(list))]
	if faulty {
		o = list[0]
	}
	r.Name, r.Kind = o.name, o.kind
	ms := g.lognormal(o.medianMS, 0.3)
	if o.method != "" {
		r.Attrs["http.request.method"] = o.method
		r.Attrs["http.route"] = o.route
		r.Attrs["http.response.status_code"] = int64(200)
	}
	if o.db != "" {
		r.Attrs["db.system"] = o.db
	}
	if faulty {
		ms = g.lognormal(5000, 0.05)
		r.StatusCode, r.StatusMsg = ptrace.StatusCodeError, "upstream connect error or disconnect/reset before headers"
		r.Attrs["http.response.status_code"] = int64(503)
	}
	r.End = t.Add(time.Duration(ms * float64(time.Millisecond)))
	return r
}
