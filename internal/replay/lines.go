package replay

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

// LineSource turns a text file into log records, one per non-empty line,
// all in one stream (service). Records are stamped with the wall clock
// when read: plain log files carry no timestamp format we could trust.
type LineSource struct {
	sc      *bufio.Scanner
	service string
	name    string
	line    int
	now     func() time.Time
}

// maxLine bounds one line; longer lines are an error naming the line, not a
// silent truncation.
const maxLine = 1 << 20

// NewLineSource reads r (named name in errors) as the stream of service.
func NewLineSource(r io.Reader, name, service string) *LineSource {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	return &LineSource{sc: sc, service: service, name: name, now: time.Now}
}

// Next returns the next non-empty line as a log record.
func (l *LineSource) Next() (Record, error) {
	for l.sc.Scan() {
		l.line++
		text := strings.TrimRight(l.sc.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		sev, sevText := SeverityOf(text)
		return Record{
			Signal: Logs, Time: l.now(), Service: l.service,
			Body: text, Severity: sev, SeverityText: sevText,
		}, nil
	}
	if err := l.sc.Err(); err != nil {
		return Record{}, fmt.Errorf("%w: %s line %d: %v", ErrBadRecord, l.name, l.line+1, err)
	}
	return Record{}, io.EOF
}

// SeverityOf finds the first level word in a log line (the usual Java,
// Go and syslog spellings) so replayed records carry a severity like
// instrumented ones would.
func SeverityOf(text string) (plog.SeverityNumber, string) {
	head := text
	if len(head) > 200 {
		head = head[:200]
	}
	for _, f := range strings.FieldsFunc(head, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '[' || r == ']' || r == ':' || r == '|' || r == '"' || r == ','
	}) {
		switch strings.ToUpper(f) {
		case "TRACE":
			return plog.SeverityNumberTrace, "TRACE"
		case "DEBUG":
			return plog.SeverityNumberDebug, "DEBUG"
		case "INFO":
			return plog.SeverityNumberInfo, "INFO"
		case "WARN", "WARNING":
			return plog.SeverityNumberWarn, "WARN"
		case "ERROR", "ERR", "SEVERE":
			return plog.SeverityNumberError, "ERROR"
		case "FATAL", "CRITICAL", "PANIC":
			return plog.SeverityNumberFatal, "FATAL"
		}
	}
	return plog.SeverityNumberUnspecified, ""
}
