package eval

import (
	"regexp"
	"strconv"
	"time"
)

// Record times for the log samples. The detector's stream-level evidence
// (bursts per time bucket) and its false-alarm budget (flags per
// stream-hour) work in record time, as the processor does with a log
// record's timestamp, so the evaluation reads each line's own timestamp.
// The samples use a dozen layouts; lineTime tries each one's pattern at the
// start of the line (or, for the ISO layout, anywhere in it). A line with
// no recognized time is scored without one (no stream-level evidence), as
// a log record without a timestamp would be.

type timeLayout struct {
	re     *regexp.Regexp
	layout string // "" for unix seconds
}

var timeLayouts = []timeLayout{
	{regexp.MustCompile(`^(?:\S+ )?(\d{10}) \d{4}\.\d{2}\.\d{2} `), ""},                              // BGL, Thunderbird
	{regexp.MustCompile(`^\d+ \S+ \S+ \S+ (\d{10}) `), ""},                                           // HPC
	{regexp.MustCompile(`^(?:\S+ )?(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})`), "2006-01-02 15:04:05"},   // Hadoop, Windows, Zookeeper, OpenStack
	{regexp.MustCompile(`^(\d{2}-\d{2} \d{2}:\d{2}:\d{2})`), "01-02 15:04:05"},                       // Android
	{regexp.MustCompile(`^\[\w{3} (\w{3} \d{2} \d{2}:\d{2}:\d{2} \d{4})\]`), "Jan 02 15:04:05 2006"}, // Apache
	{regexp.MustCompile(`^(\d{6} \d{6}) `), "060102 150405"},                                         // HDFS
	{regexp.MustCompile(`^(\d{8}-\d{1,2}:\d{1,2}:\d{1,2})`), "20060102-15:4:5"},                      // HealthApp
	{regexp.MustCompile(`^(\w{3} +\d{1,2} \d{2}:\d{2}:\d{2})`), "Jan _2 15:04:05"},                   // syslog
	{regexp.MustCompile(`^\[(\d{2}\.\d{2} \d{2}:\d{2}:\d{2})\]`), "01.02 15:04:05"},                  // Proxifier
	{regexp.MustCompile(`^(\d{2}/\d{2}/\d{2} \d{2}:\d{2}:\d{2})`), "06/01/02 15:04:05"},              // Spark
}

// lineTime returns the time written in a log line, zero if none is found.
func lineTime(line []byte) time.Time {
	for _, l := range timeLayouts {
		m := l.re.FindSubmatch(line)
		if m == nil {
			continue
		}
		if l.layout == "" {
			sec, err := strconv.ParseInt(string(m[1]), 10, 64)
			if err == nil {
				return time.Unix(sec, 0).UTC()
			}
			continue
		}
		if t, err := time.ParseInLocation(l.layout, string(m[1]), time.UTC); err == nil {
			if t.Year() == 0 { // a layout without a year: any fixed one will do
				t = t.AddDate(2000, 0, 0)
			}
			return t
		}
	}
	return time.Time{}
}
