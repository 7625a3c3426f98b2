package driftlockprocessor

import (
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// scrapeFlags keeps one flag per stream and timestamp: the series of one
// service scraped at one instant (its memory in MiB and in percent, its
// p90, p95 and p99 latency) move together, so several unusual series in one
// scrape are one anomaly of that service, flagged on the first series
// found, not one per series. Later series of the same scrape are scored,
// learned and counted as usual; only their flag is dropped.
//
// Memory: one entry (an interned stream id and a timestamp) per stream
// that flagged, cleared when it exceeds max_series.
type scrapeFlags struct {
	mu   sync.Mutex
	last map[string]pcommon.Timestamp
	max  int
}

func newScrapeFlags(maxEntries int) *scrapeFlags {
	return &scrapeFlags{last: make(map[string]pcommon.Timestamp), max: maxEntries}
}

// first reports whether stream has not flagged at ts yet, and records it.
func (f *scrapeFlags) first(stream string, ts pcommon.Timestamp) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if prev, ok := f.last[stream]; ok && prev == ts {
		return false
	}
	if len(f.last) >= f.max {
		clear(f.last)
	}
	f.last[stream] = ts
	return true
}
