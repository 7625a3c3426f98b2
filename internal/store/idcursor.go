package store

import (
	"context"
	"time"
)

// IDCursor reads the anomalies table in id order without a gap, for every
// reader that must see each row exactly once (the API's live stream, the
// incident correlator).
//
// Ids come from a sequence, so a transaction that took id 10 may commit
// after the one that took id 11, and ids burnt by rollbacks or ON CONFLICT
// never appear. The cursor holds the rows behind a gap until the gap is
// settled: every transaction that was in progress when the later row
// became visible has ended (TransactionsDone), or GraceMax passed, for a
// writer stuck in a transaction. Reads go in batches of rows with id >
// Last (AnomaliesAfter, MembersAfter), each with the transactions in
// progress in its snapshot.
//
// Use: Settle once per poll, then for each batch read after Last, Take;
// read again while Take says more. While Pending, poll again after
// RetryAfter.
type IDCursor struct {
	// Last is the id up to which every row was taken (or never existed).
	Last int64
	// GraceMin is how long a gap stands before its transactions are asked
	// about; GraceMax how long before it is skipped regardless.
	GraceMin, GraceMax time.Duration

	gap     *idGap
	settled int64 // every id <= settled is visible or never will be
}

type idGap struct {
	upto  int64   // the largest id read behind the gap
	xip   []int64 // the transactions in progress when it was read
	since time.Time
}

// Pending reports whether rows behind a gap wait to be settled.
func (c *IDCursor) Pending() bool { return c.gap != nil }

// RetryAfter is when to poll again while Pending.
func (c *IDCursor) RetryAfter() time.Duration { return max(c.GraceMin/2, 10*time.Millisecond) }

// Settle starts a poll at now: it settles the pending gap when its
// transactions have ended, or gives up on them after GraceMax: skippedBelow
// is then the id below which rows may be missed, for the caller to log (a
// writer held its transaction open too long); 0 otherwise.
func (c *IDCursor) Settle(ctx context.Context, st *Store, now time.Time) (skippedBelow int64, err error) {
	c.settled = c.Last
	g := c.gap
	if g == nil || now.Sub(g.since) < c.GraceMin {
		return 0, nil
	}
	if now.Sub(g.since) >= c.GraceMax {
		skippedBelow = g.upto
	} else if done, err := st.TransactionsDone(ctx, g.xip); err != nil || !done {
		return 0, err
	}
	c.settled, c.gap = g.upto, nil
	return skippedBelow, nil
}

// Take advances over the leading rows of a batch read after Last that can
// be taken (ids are the batch's ids in order; full is whether the batch
// was as long as asked): it returns how many, and whether to read another
// batch. At the first gap it remembers the batch's transactions (xip) and
// stops.
func (c *IDCursor) Take(ids []int64, xip []int64, full bool, now time.Time) (taken int, more bool) {
	i := 0
	for i < len(ids) && (ids[i] == c.Last+1 || ids[i] <= c.settled) {
		c.Last = ids[i]
		i++
	}
	if (i < len(ids) || !full) && c.settled > c.Last {
		c.Last = c.settled // every id up to settled was read: the rest never existed
	}
	if i < len(ids) {
		if c.gap == nil {
			c.gap = &idGap{upto: ids[len(ids)-1], xip: xip, since: now}
		}
		return i, false
	}
	return i, full
}
