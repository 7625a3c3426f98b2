package store

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// Fingerprint is the stable identity of a flagged record: a SHA-256 (hex,
// first 128 bits) over the signal, stream, observation time, trace and span
// ids and the record's identity bytes (for the exporter: body or name plus
// the sorted non-driftlock attributes). The same record exported twice (a
// retry, a replayed persistent queue) gets the same fingerprint and is
// stored once.
// Every field is length-prefixed so that ("ab","c") and ("a","bc") differ.
func Fingerprint(signal, stream string, observed time.Time, traceID, spanID string, body []byte) string {
	h := sha256.New()
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte(signal))
	field([]byte(stream))
	binary.BigEndian.PutUint64(n[:], uint64(observed.UnixNano()))
	h.Write(n[:])
	field([]byte(traceID))
	field([]byte(spanID))
	field(body)
	sum := h.Sum(nil)
	return hex.EncodeToString(sum[:16])
}
