package api_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The OpenAPI document and the router must describe the same API: every
// route is documented and every documented operation exists, every $ref
// resolves, and authenticated operations document 401 and 403.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t)
	r := e.get("/v1/openapi.json", e.viewer)
	wantCode(t, r, http.StatusOK)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	r.json(t, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			key := strings.ToUpper(method) + " " + path
			documented[key] = true
			var op struct {
				Security  *[]any                     `json:"security"`
				Responses map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			public := op.Security != nil && len(*op.Security) == 0
			if public != publicRoutes[key] {
				t.Errorf("%s: documented public=%v, router public=%v", key, public, publicRoutes[key])
			}
			if !public && (op.Responses["401"] == nil || op.Responses["403"] == nil || op.Responses["429"] == nil) {
				t.Errorf("%s: authenticated operation without 401/403/429", key)
			}
		}
	}
	var routed []string
	for _, rt := range e.srv.Routes() {
		if rt == "GET /{$}" || rt == "GET /ui/{file}" {
			continue // the web page, not API
		}
		routed = append(routed, rt)
		if !documented[rt] {
			t.Errorf("route %s is not in openapi.json", rt)
		}
	}
	if len(routed) != len(documented) {
		var d []string
		for k := range documented {
			d = append(d, k)
		}
		sort.Strings(d)
		t.Errorf("openapi documents %d operations, router has %d: %v", len(documented), len(routed), d)
	}
	// Every $ref points at something.
	var all map[string]any
	r.json(t, &all)
	for _, m := range regexp.MustCompile(`"\$ref":"#/([^"]+)"`).FindAllStringSubmatch(string(mustCompact(t, r.body)), -1) {
		var cur any = all
		for _, part := range strings.Split(m[1], "/") {
			obj, ok := cur.(map[string]any)
			if !ok || obj[part] == nil {
				t.Fatalf("dangling $ref #/%s", m[1])
			}
			cur = obj[part]
		}
	}
}

var publicRoutes = map[string]bool{
	"GET /healthz": true, "GET /readyz": true, "POST /v1/session": true, "DELETE /v1/session": true,
}

func mustCompact(t *testing.T, b []byte) []byte {
	var out strings.Builder
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return []byte(out.String())
}
