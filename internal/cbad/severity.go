package cbad

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
	var buf [12]byte
	words := 0
	i := 0
	for i < len(s) && words < maxWords {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		j := i
		for j < len(s) && s[j] != ' ' {
			j++
		}
		words++
		a, b := i, j
		for a < b && !isAlpha(s[a]) {
			a++
		}
		for b > a && !isAlpha(s[b-1]) {
			b--
		}
		if n := b - a; n >= 3 && n <= len(buf) {
			alpha := true
			for k := 0; k < n; k++ {
				c := s[a+k]
				if !isAlpha(c) {
					alpha = false
					break
				}
				buf[k] = c | 0x20
			}
			// The map lookup with a converted byte slice does not allocate.
			if v, ok := levelWords[string(buf[:n])]; alpha && ok {
				return v
			}
			// FAILURE is a level only when written as one (BGL's levels);
			// "authentication failure" is a message.
			if alpha && n == 7 && string(s[a:b]) == "FAILURE" {
				return 18
			}
		}
		i = j
	}
	return 0
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
