package incident

import (
	"sort"
	"time"
)

// graph is the service call graph: caller -> callee edges with the observed
// time each was last seen. It is learned from spans (a tier that sees
// parent and child spans of a call, see AddEdge) and from edge-latency
// anomalies (their PeerService).
type graph struct {
	Callees map[string]map[string]time.Time
	Callers map[string]map[string]time.Time
}

func newGraph() graph {
	return graph{Callees: map[string]map[string]time.Time{}, Callers: map[string]map[string]time.Time{}}
}

func (g *graph) add(caller, callee string, at time.Time) {
	if caller == "" || callee == "" || caller == callee {
		return
	}
	link := func(m map[string]map[string]time.Time, a, b string) {
		s := m[a]
		if s == nil {
			s = map[string]time.Time{}
			m[a] = s
		}
		if at.After(s[b]) {
			s[b] = at
		}
	}
	link(g.Callees, caller, callee)
	link(g.Callers, callee, caller)
}

// calls reports whether caller calls callee.
func (g *graph) calls(caller, callee string) bool {
	_, ok := g.Callees[caller][callee]
	return ok
}

// adjacent reports whether a and b call each other in either direction.
func (g *graph) adjacent(a, b string) bool { return g.calls(a, b) || g.calls(b, a) }

// callees returns the callees of s, sorted.
func (g *graph) callees(s string) []string { return sortedKeys(g.Callees[s]) }

// forget drops edges last seen before cutoff.
func (g *graph) forget(cutoff time.Time) {
	for _, m := range []map[string]map[string]time.Time{g.Callees, g.Callers} {
		for a, s := range m {
			for b, at := range s {
				if at.Before(cutoff) {
					delete(s, b)
				}
			}
			if len(s) == 0 {
				delete(m, a)
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Edge is one caller -> callee call, last seen at At (observed time).
type Edge struct {
	Caller, Callee string
	At             time.Time
}

// Edges returns the call graph as it stands, sorted by caller then callee.
func (c *Correlator) Edges() []Edge {
	var out []Edge
	for _, a := range sortedKeys(c.st.Graph.Callees) {
		for _, b := range sortedKeys(c.st.Graph.Callees[a]) {
			out = append(out, Edge{Caller: a, Callee: b, At: c.st.Graph.Callees[a][b]})
		}
	}
	return out
}
