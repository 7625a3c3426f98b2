package cbad

import "bytes"

// Severity numbers follow OpenTelemetry's SeverityNumber ranges:
// TRACE 1-4, DEBUG 5-8, INFO 9-12, WARN 13-16, ERROR 17-20, FATAL 21-24.

// levelWords maps level words found in log text to a severity number.
var levelWords = map[string]int{
	"trace": 1, "debug": 5, "dbg": 5, "info": 9, "information": 9, "notice": 10,
	"warn": 13, "warning": 13, "error": 17, "err": 17, "severe": 18,
	"crit": 21, "critical": 21, "fatal": 21, "panic": 22, "alert": 22, "emerg": 23, "emergency": 23,
}

// severityFromTokens looks for a level word among the first
// whitespace-separated words of a canonical record, ignoring punctuation
// around it: levels sit near the start ("... RAS KERNEL FATAL ...",
// "2015-10-18 ... INFO [main] ...", "[error] mod_jk ..."). Returns 0 when
// none is found.
func severityFromTokens(s []byte) int {
	const maxWords = 12
	words := 0
	i := 0
	for i < len(s) && words < maxWords {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		j := len(s)
		if k := bytes.IndexByte(s[i:], ' '); k >= 0 {
			j = i + k
		}
		words++
		a, b := i, j
		for a < b && !isAlpha(s[a]) {
			a++
		}
		for b > a && !isAlpha(s[b-1]) {
			b--
		}
		if n := b - a; n >= 3 && n <= maxLevelWord {
			var key uint64
			alpha := true
			for _, c := range s[a:b] {
				if !isAlpha(c) {
					alpha = false
					break
				}
				key = levelKeyStep(key, c)
			}
			// A level precedes its message: a level word that ends the
			// record is a value ("gige temperature ... critical", a
			// status column), not the record's level.
			if alpha && j < len(s) {
				if v := levelOf(key); v != 0 {
					return v
				}
				// FAILURE is a level only when written as one (BGL's
				// levels); "authentication failure" is a message.
				if n == 7 && string(s[a:b]) == "FAILURE" {
					return 18
				}
			}
		}
		i = j
	}
	return 0
}

// Level words are looked up by a key packed from their letters, 5 bits a
// letter, case folded: this runs on up to 12 words of every record, and a
// probe of a small array is several times cheaper than hashing a string
// for a map. Words of up to maxLevelWord letters fit in 64 bits, and the
// packing is one to one (letters are 1..26, never 0).
const maxLevelWord = 12

func levelKeyStep(key uint64, c byte) uint64 { return key<<5 | uint64(c|0x20-'a'+1) }

// levelTable holds levelWords by packed key, open addressing.
var levelTable = func() (t [64]struct {
	key uint64
	sev int
}) {
	for w, sev := range levelWords {
		var key uint64
		for i := 0; i < len(w); i++ {
			key = levelKeyStep(key, w[i])
		}
		for i := levelSlot(key); ; i = (i + 1) % uint64(len(t)) {
			if t[i].key == 0 {
				t[i].key, t[i].sev = key, sev
				break
			}
		}
	}
	return t
}()

func levelSlot(key uint64) uint64 { return key * 0x9e3779b97f4a7c15 >> 58 }

// levelOf returns the severity of the level word with the packed key, 0
// if it is none.
func levelOf(key uint64) int {
	for i := levelSlot(key); ; i = (i + 1) % uint64(len(levelTable)) {
		e := &levelTable[i]
		if e.key == key {
			return e.sev
		}
		if e.key == 0 {
			return 0
		}
	}
}

// fatalLR is the evidence factor of a FATAL record.
const fatalLR = 0.1

// severityLikelihood is the factor by which a record's p-value is scaled
// before the decision: how much more (or less) likely an anomaly is at this
// severity. It never decides alone: a record must still cost more than the
// stream's median by min_effect.
func severityLikelihood(sev int) float64 {
	switch {
	case sev == 0:
		return 1
	case sev >= 21: // FATAL
		return fatalLR
	case sev >= 17: // ERROR
		return 0.25
	case sev >= 13: // WARN
		return 0.5
	case sev >= 9: // INFO
		return 1
	default: // TRACE, DEBUG
		return 2
	}
}

func severityName(sev int) string {
	switch {
	case sev <= 0:
		return ""
	case sev <= 4:
		return "TRACE"
	case sev <= 8:
		return "DEBUG"
	case sev <= 12:
		return "INFO"
	case sev <= 16:
		return "WARN"
	case sev <= 20:
		return "ERROR"
	default:
		return "FATAL"
	}
}
