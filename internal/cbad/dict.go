package cbad

import (
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// dictModel is the LZ alternative to the n-gram model: each record is
// encoded with the stream's recent normal text as a raw dictionary (s2 or
// zstd), and its cost is the encoded size. The dictionary is rebuilt every
// hop records from the reference ring, never per record.
type dictModel struct {
	text []byte
	s2d  *s2.Dict
	zenc *zstd.Encoder
	// empty is the encoded size of an empty record (framing overhead),
	// subtracted so that the cost reflects the record, not the container.
	empty int
}

const maxDictBytes = 64 << 10

func (m *dictModel) rebuild(kind string, ref, window *ring) {
	// The dictionary is the stream's recent normal text: the reference ring
	// and the normal records of the current window.
	m.text = m.text[:0]
	for i := 0; i < ref.n; i++ {
		m.text = append(m.text, ref.at(i).text...)
	}
	for i := 0; i < window.n; i++ {
		if s := window.at(i); !s.flagged {
			m.text = append(m.text, s.text...)
		}
	}
	if len(m.text) > maxDictBytes {
		m.text = m.text[len(m.text)-maxDictBytes:]
	}
	if len(m.text) < 16 {
		return
	}
	switch kind {
	case CompressorS2:
		m.s2d = s2.MakeDict(m.text, nil)
		m.empty = 0
	case CompressorZstd:
		if m.zenc != nil {
			_ = m.zenc.Close()
		}
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderDictRaw(1, m.text),
			zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false),
			zstd.WithZeroFrames(true), zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			m.zenc = nil
			return
		}
		m.zenc = enc
		m.empty = len(enc.EncodeAll([]byte{'\n'}, nil))
	}
}

// cost returns the record's encoded size given the dictionary, in bits.
// Before the first dictionary exists the record costs its raw size.
func (m *dictModel) cost(sc *scratch, rec []byte) float64 {
	var n int
	switch {
	case m.s2d != nil:
		if need := s2.MaxEncodedLen(len(rec)) + 16; cap(sc.enc) < need {
			sc.enc = make([]byte, need)
		}
		n = len(m.s2d.Encode(sc.enc[:cap(sc.enc)], rec))
	case m.zenc != nil:
		n = len(m.zenc.EncodeAll(rec, sc.enc[:0])) - m.empty
	default:
		n = len(rec)
	}
	if n < 0 {
		n = 0
	}
	return float64(8 * n)
}

func (m *dictModel) bytes() int {
	n := cap(m.text)
	if m.s2d != nil {
		n += len(m.text) + 64<<10 // s2 keeps a hash table beside the dictionary
	}
	if m.zenc != nil {
		n += 1 << 20
	}
	return n
}
