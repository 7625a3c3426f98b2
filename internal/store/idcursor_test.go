package store

import (
	"context"
	"testing"
	"time"
)

// The cursor takes rows up to the first id gap, holds the rest until the
// gap settles (here: GraceMax passes, so no database is asked), then takes
// them; ids never seen below a settled gap are skipped over.
func TestIDCursorHoldsRowsBehindAGap(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	c := IDCursor{Last: 0, GraceMin: time.Second, GraceMax: 5 * time.Second}
	if _, err := c.Settle(context.Background(), nil, t0); err != nil {
		t.Fatal(err)
	}
	n, more := c.Take([]int64{1, 2, 4, 5}, []int64{77}, false, t0)
	if n != 2 || more || c.Last != 2 || !c.Pending() {
		t.Fatalf("took %d (more %v), last %d, pending %v; want 2 rows up to the gap at 3, pending", n, more, c.Last, c.Pending())
	}
	// Within GraceMin nothing settles and nothing behind the gap is taken.
	if skipped, _ := c.Settle(context.Background(), nil, t0.Add(500*time.Millisecond)); skipped != 0 {
		t.Fatalf("skipped below %d before GraceMin", skipped)
	}
	if n, _ := c.Take([]int64{4, 5}, nil, false, t0.Add(500*time.Millisecond)); n != 0 || c.Last != 2 {
		t.Fatalf("took %d rows behind an unsettled gap (last %d)", n, c.Last)
	}
	// After GraceMax the gap is given up on: rows up to 5 are taken.
	skipped, err := c.Settle(context.Background(), nil, t0.Add(6*time.Second))
	if err != nil || skipped != 5 {
		t.Fatalf("Settle after GraceMax: skipped below %d, err %v; want 5", skipped, err)
	}
	n, more = c.Take([]int64{4, 5}, nil, false, t0.Add(6*time.Second))
	if n != 2 || more || c.Last != 5 || c.Pending() {
		t.Fatalf("after settling took %d (more %v), last %d, pending %v; want 2, last 5", n, more, c.Last, c.Pending())
	}
	// A full batch without a gap asks for another read.
	if n, more := c.Take([]int64{6, 7}, nil, true, t0); n != 2 || !more {
		t.Fatalf("full batch: took %d, more %v", n, more)
	}
}
