package cbad

import (
	"fmt"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/attrs"
)

// word returns a distinct letters-only word for i (no digit: each one
// makes a new kind, see kindStep).
func word(i int) string {
	b := []byte{}
	for i++; i > 0; i /= 26 {
		b = append(b, byte('a'+i%26))
	}
	return string(b)
}

// diverseStream is routine traffic in which one record in every 20 is of a
// kind never seen before: a component logging a new message each time, as
// a desktop's system log or a proxy naming each new host does.
func diverseStream(n int) [][]byte {
	out := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		if i%20 == 7 {
			out = append(out, []byte(fmt.Sprintf("ERROR agent %s failed: %s refused %s", word(3*i), word(3*i+1), word(3*i+2))))
			continue
		}
		out = append(out, timedNormal(i))
	}
	return out
}

func countFlags(rs []Result, from int) int {
	n := 0
	for _, r := range rs[from:] {
		if r.Anomaly {
			n++
		}
	}
	return n
}

func withoutDiscovery() Option { return func(d *Detector) { d.noDiscovery = true } }

// A stream that introduces a new kind every 20 records learns that this is
// what it does: its novelties are weighed against its own rate of novelty
// (discovery), instead of each being flagged as the first of its kind.
func TestRoutineNoveltyIsNotNews(t *testing.T) {
	lines := diverseStream(2000)
	// The rate is measured once the stream has run discoveryMin records;
	// from then on (record 500, a few hundred records later) its new
	// error kinds are what it does.
	with := countFlags(scoreAll(t, DefaultConfig(), lines), 500)
	without := countFlags(scoreAll(t, DefaultConfig(), lines, withoutDiscovery()), 500)
	t.Logf("flags of records 500..2000, a new ERROR kind every 20: %d with the discovery rate, %d without", with, without)
	if with > 2 {
		t.Fatalf("%d flags of 1500 records of a stream that introduces a new kind every 20, want <= 2", with)
	}
	if without < 5 {
		t.Fatalf("without the discovery rate only %d flags (with it %d): the test does not measure the mechanism", without, with)
	}
}

// A stream that never produces new kinds keeps flagging the first one (its
// discovery rate is 0), and in a diverse stream a record far rarer than its
// usual novelties is still news.
func TestNoveltyStillFlagged(t *testing.T) {
	stable := syntheticStream(1500, 1200)
	if r := scoreAll(t, DefaultConfig(), stable)[1200]; !r.Anomaly {
		t.Fatalf("first never-seen ERROR line of a stable stream not flagged: %+v", r)
	}
	lines := diverseStream(1500)
	lines[1203] = []byte("ERROR kernel panic: unable to mount root filesystem on unknown block device; stack follows: vfs mount root prepare namespace kernel init freeinit")
	if r := scoreAll(t, DefaultConfig(), lines)[1203]; !r.Anomaly {
		t.Fatalf("a record far beyond the diverse stream's novelties not flagged: %+v", r)
	}
}

func TestDiscoveryRateAndKindSet(t *testing.T) {
	var s kindSet
	// Far more kinds than a generation holds: the recent ones stay known.
	for i := uint64(1); i <= 5000; i++ {
		if s.visit(i * 0x9e3779b97f4a7c15) {
			t.Fatalf("kind %d seen before its first visit", i)
		}
	}
	for i := uint64(4901); i <= 5000; i++ {
		if !s.visit(i * 0x9e3779b97f4a7c15) {
			t.Fatalf("recent kind %d forgotten", i)
		}
	}
	d := newDiscovery(false)
	for i := 0; i < discoveryWindow*2; i++ {
		d.observe(i%10 == 0, false, 1, 1)
	}
	if r := d.rate(false); r < 0.09 || r > 0.11 {
		t.Fatalf("discovery rate %v, want 0.1", r)
	}
}

// Kinds ignore the words of a written-out date, as they ignore its digits.
func TestKindIgnoresCalendarWords(t *testing.T) {
	a := KindOf([]byte("Jun 17 07:07:00 combo ftpd[29504]: connection from 24.54.76.216 () at Fri Jun 17 07:07:00 2005"))
	b := KindOf([]byte("Jul  2 13:16:30 combo ftpd[17890]: connection from 210.245.165.136 () at Sat Jul  2 13:16:30 2005"))
	if a != b {
		t.Fatalf("the same message on two dates has kinds %x and %x", a, b)
	}
	if KindOf([]byte("May the build pass")) != KindOf([]byte("Mar the build pass")) || KindOf([]byte("may pass")) == KindOf([]byte("mar pass")) {
		t.Fatal("calendar words: capitalized abbreviations are values, other words are not")
	}
}

// A kind that bursts every night (a brute-force session, a batch job) is
// news the first time; once it has a habit of bursting its bursts are what
// the stream does. A burst of errors is news however often it happens.
func TestHabitualBurstsOfAnInfoKind(t *testing.T) {
	run := func(opts ...Option) (info, errs []int) {
		d, _ := New(DefaultConfig(), opts...)
		const days = 5
		info, errs = make([]int, days), make([]int, days)
		n := 0
		for s := 0; s < days*86400; s += 10 {
			tm := t0.Add(time.Duration(s) * time.Second)
			d.Score("svc", Record{Data: timedNormal(n), Time: tm})
			n++
			day, sec := s/86400, s%86400
			if s%600 == 0 { // both kinds are familiar text: a line every 10 minutes
				d.Score("svc", Record{Data: []byte(fmt.Sprintf("INFO sshd session opened for user test from %d.%d.0.1", day, s%7)), Time: tm})
				d.Score("svc", Record{Data: []byte(fmt.Sprintf("ERROR upstream refused connection to %d.%d.0.9", day, s%7)), Time: tm})
			}
			if sec >= 3*3600 && sec < 3*3600+60 { // 03:00, 30 lines in a minute
				for k := 0; k < 5; k++ {
					r := d.Score("svc", Record{Data: []byte(fmt.Sprintf("INFO sshd session opened for user test from %d.%d.0.1", day, k)), Time: tm})
					if r.Anomaly && r.Reason == attrs.ReasonRate {
						info[day]++
					}
				}
			}
			if sec >= 15*3600 && sec < 15*3600+60 { // 15:00, an error storm
				for k := 0; k < 5; k++ {
					r := d.Score("svc", Record{Data: []byte(fmt.Sprintf("ERROR upstream refused connection to %d.%d.0.9", day, k)), Time: tm})
					if r.Anomaly && (r.Reason == attrs.ReasonErrors || r.Reason == attrs.ReasonRate) {
						errs[day]++
					}
				}
			}
		}
		return info, errs
	}
	info, errs := run()
	t.Logf("burst flags per day: info %v, errors %v", info, errs)
	for day, n := range errs {
		if n == 0 {
			t.Fatalf("day %d: the error storm was not flagged (%v): errors are news however often", day, errs)
		}
	}
	infoOff, _ := run(func(d *Detector) { d.rp.noRoutine = true })
	assertBecomesHabit(t, "nightly burst of an INFO kind", info, infoOff, 0, 2)
}

// assertBecomesHabit checks a daily burst's flags per day: flagged on day
// first, never from day habitFrom on (a habit by then), and flagged on the
// last day with the habit test off (so the test measures the mechanism).
func assertBecomesHabit(t *testing.T, what string, flags, withoutHabit []int, first, habitFrom int) {
	t.Helper()
	if flags[first] == 0 {
		t.Fatalf("the first %s was not flagged: %v", what, flags)
	}
	for day := habitFrom; day < len(flags); day++ {
		if flags[day] != 0 {
			t.Fatalf("day %d: a %s was flagged again (%v): it is a habit by now", day, what, flags)
		}
	}
	if withoutHabit[len(withoutHabit)-1] == 0 {
		t.Fatalf("without the habit test the last %s got no flag (%v): the test does not measure the mechanism", what, withoutHabit)
	}
}

// Several familiar kinds that surge together (a connection storm logs a
// dozen messages per reconnect) are one condition of the stream: one burst
// flag per maxFlagGap, while every kind's episode still annotates its
// records. Each brute-force session that names a new host is a new kind
// bursting in its first bucket; once the stream has a habit of such debuts
// they are what it does.
func TestStormOfFamiliarKindsIsOneCondition(t *testing.T) {
	storm := []string{
		"WARN RecvWorker interrupting SendWorker for peer %d",
		"WARN SendWorker interrupted while waiting for message on queue %d",
		"INFO Listener received connection request from peer %d",
		"WARN RecvWorker connection broken for id %d",
	}
	run := func(opts ...Option) (flags, episodes int) {
		d, _ := New(DefaultConfig(), opts...)
		n := 0
		for s := 0; s < 6*3600; s += 5 {
			tm := t0.Add(time.Duration(s) * time.Second)
			d.Score("svc", Record{Data: timedNormal(n), Time: tm})
			n++
			if s%900 == 0 { // the storm's kinds are familiar: each logs now and then
				for _, f := range storm {
					d.Score("svc", Record{Data: []byte(fmt.Sprintf(f, s%7)), Time: tm})
				}
			}
			if s >= 4*3600 && s < 4*3600+60 { // a one-minute storm: every kind surges
				for k := 0; k < 2; k++ {
					for _, f := range storm {
						r := d.Score("svc", Record{Data: []byte(fmt.Sprintf(f, k)), Time: tm})
						if r.Anomaly && r.Reason == attrs.ReasonRate {
							flags++
						}
						if !r.Episode.IsZero() {
							episodes++
						}
					}
				}
			}
		}
		return flags, episodes
	}
	flags, episodes := run()
	all, _ := run(func(d *Detector) { d.rp.noRoutine = true })
	t.Logf("burst flags of a 4-kind storm: %d (each kind on its own: %d); storm records in an episode: %d", flags, all, episodes)
	if flags != 1 {
		t.Fatalf("a storm of 4 familiar kinds got %d burst flags, want 1", flags)
	}
	if all < 3 {
		t.Fatalf("each kind on its own got only %d flags: the test does not measure the mechanism", all)
	}
	if episodes < 40 {
		t.Fatalf("only %d of the storm's 96 records carry an episode", episodes)
	}
}

func TestDebutBurstsBecomeAHabit(t *testing.T) {
	run := func(opts ...Option) []int {
		d, _ := New(DefaultConfig(), opts...)
		const days = 6
		flags := make([]int, days)
		n := 0
		for s := 0; s < days*86400; s += 10 {
			tm := t0.Add(time.Duration(s) * time.Second)
			d.Score("svc", Record{Data: timedNormal(n), Time: tm})
			n++
			day, sec := s/86400, s%86400
			if s%600 == 0 { // single failed logins from ever new hosts: familiar text
				d.Score("svc", Record{Data: []byte("INFO sshd authentication failure logname= uid=0 euid=0 tty=ssh ruser= rhost=" + word(s/600) + ".example.org user=root"), Time: tm})
			}
			if day > 0 && sec >= 2*3600 && sec < 2*3600+60 {
				// A session from a host that failed once 20 hours ago: its
				// kind (the host name is part of it) has left the stream's
				// table of kinds since, and bursts in its first bucket.
				for k := 0; k < 4; k++ {
					r := d.Score("svc", Record{Data: []byte("INFO sshd authentication failure logname= uid=0 euid=0 tty=ssh ruser= rhost=" + word((s-20*3600)/600) + ".example.org user=root"), Time: tm})
					if r.Anomaly && r.Reason == attrs.ReasonRate {
						flags[day]++
					}
				}
			}
		}
		return flags
	}
	flags := run()
	all := run(func(d *Detector) { d.rp.noRoutine = true })
	t.Logf("debut-burst flags per day: %v (without the habit: %v)", flags, all)
	assertBecomesHabit(t, "debut burst", flags, all, 1, 3)
}

// A recurring error kind that the stream admitted to its baseline is
// weighed by its cost alone afterwards: its severity kept it out until it
// recurred enough, and does not flag its ordinary copies for ever.
func TestAdmittedErrorKindLosesSeverityWeight(t *testing.T) {
	lines := make([][]byte, 0, 3000)
	for i := 0; i < 3000; i++ {
		if i > 300 && i%25 == 0 {
			lines = append(lines, []byte(fmt.Sprintf("ERROR switch module link state changed after %d ms on port %d", 100+(i*7919)%900, 100+(i*104729)%900)))
			continue
		}
		lines = append(lines, timedNormal(i))
	}
	rs := scoreAll(t, DefaultConfig(), lines)
	d, _ := New(DefaultConfig())
	for _, l := range lines {
		d.Score("s", Record{Data: l})
	}
	if !d.streams["s"].novelty.admittedKind(KindOf(lines[325])) {
		t.Fatalf("the recurring error kind was never admitted")
	}
	late := countFlags(rs, 1500)
	kept := countFlags(scoreAll(t, DefaultConfig(), lines, func(d *Detector) { d.keepAdmittedSeverity = true }), 1500)
	t.Logf("flags on the last 60 copies of an admitted error kind: %d (weighing its severity still: %d)", late, kept)
	if late > 15 || kept < 2*late+10 {
		t.Fatalf("%d flags on the last 60 copies of an admitted error kind (%d with its severity), want <= 15 and far fewer", late, kept)
	}
}

// Learn (triage: a person marked a flagged record as normal) makes the
// record's kind known: its next copy is not flagged, while without the
// feedback it is.
func TestLearnMakesTheKindKnown(t *testing.T) {
	line := []byte("ERROR payment gateway refused connection: TLS handshake timeout after 30s")
	run := func(learn bool) Result {
		d, _ := New(DefaultConfig())
		for _, l := range syntheticStream(1000, -1) {
			d.Score("s", Record{Data: l})
		}
		if learn {
			d.Learn("s", Record{Data: line})
			if st := d.streams["s"]; !st.novelty.admittedKind(KindOf(line)) || !st.disc.seen.visit(KindOf(line)) {
				t.Fatal("Learn did not make the kind known")
			}
		}
		return d.Score("s", Record{Data: line})
	}
	if r := run(false); !r.Anomaly {
		t.Fatalf("without feedback the never-seen ERROR line is not flagged: %+v", r)
	}
	if r := run(true); r.Anomaly {
		t.Fatalf("after Learn the same line is still flagged: %s", r.Explanation)
	}
}
