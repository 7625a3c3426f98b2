package cbad

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func canon(s string) string {
	out, _ := Canonicalize(nil, nil, []byte(s))
	return string(out)
}

func TestCanonicalizeMasks(t *testing.T) {
	cases := []struct{ in, want string }{
		{"took 12345 ms", "took <num> ms"},
		{"took 123 ms", "took 123 ms"},                                     // fewer than 4 digits is structure
		{"total=6.20 score=0.11 v1.2.3", "total=<num> score=<num> v0.0.0"}, // decimals are measurements
		{"at 2005-06-03-15.42.50.675872 done", "at <ts> done"},
		{"2015-10-18 18:01:47,978 INFO", "<ts> <ts> INFO"},
		{"[10.30 16:49:06] open", "[<num> <ts>] open"},
		{"req 0x1b85f080 failed", "req <hex> failed"},
		{"sha 9f4ef63a21bc77d0 ok", "sha <hex> ok"},
		{"id 123e4567-e89b-12d3-a456-426614174000 x", "id <uuid> x"},
		{"trace 7f3c0c0a-2d72-4d1b-9e1f-915298069164 x", "trace <uuid> x"},
		{"from 10.0.0.151:8080 to [192.168.1.1],", "from <ip> to [<ip>],"},
		{"mail bob.smith@example.com now", "mail <email> now"},
		{"GET /api/v1/items?user=alice&page=7 200", "GET /api/v0/items?user=<v>&page=<v> 200"}, // v1 folds like any identifier,
		{"blob QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3 end", "blob <b64> end"},
		{"node R02-M1-N0-C:J12-U11 up", "node R0-M0-N0-C:J0-U0 up"},
		{"  many   spaces\there ", "many spaces here"},
	}
	for _, c := range cases {
		if got := canon(c.in); got != c.want {
			t.Errorf("Canonicalize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestRedactSecrets(t *testing.T) {
	cases := []struct{ in, want string }{
		{"login password=hunter2 ok", "login password=<redacted> ok"},
		{`{"db_password": "s3cr3t!", "user": "bob"}`, `{"db_password": "<redacted>", "user": "bob"}`},
		{"token: abc.def.ghi next", "token: <redacted> next"},
		{"Authorization: Bearer eyJhbGciOi.x.y", "Authorization: Bearer <redacted>"},
		{"X-Api-Key=AKIA1234567890", "X-Api-Key=<redacted>"},
		{"card 4111 1111 1111 1111 charged", "card <card> charged"},
		{"card 4111-1111-1111-1111 charged", "card <card> charged"},
		{"order 4111111111111112 shipped", "order 4111111111111112 shipped"}, // fails Luhn
		{"plain text with key=value", "plain text with key=value"},
		{"id 0c0a0-0a0-0c0-0d72-915298069164 ok", "id 0c0a0-0a0-0c0-0d72-915298069164 ok"}, // not a card inside an id
		{"paid with 378282246310005.", "paid with <card>."},                                // Amex, sentence end
		{"paid with 3782 822463 10005 ok", "paid with <card> ok"},                          // Amex, grouped 4-6-5
		{"081109 210248 1005 INFO dfs.DataNode", "081109 210248 1005 INFO dfs.DataNode"},   // HDFS time stamp (passes Luhn): no 4-digit first group
	}
	for _, c := range cases {
		if got := string(Redact(nil, []byte(c.in))); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// Canonicalization redacts too, so secrets never reach a baseline.
	if got := canon("user=bob password=hunter2"); strings.Contains(got, "hunter2") {
		t.Fatalf("canonical form leaks a secret: %q", got)
	}
}

func TestSeverityFromText(t *testing.T) {
	cases := map[string]int{
		"<num> <ts> R0 RAS KERNEL FATAL data TLB error": 21,
		"<ts> <ts> INFO [main] started":                 9,
		"[<ts>] [error] mod_jk child in error state":    17,
		"sshd: authentication failure; logname=":        0,
		"- KERNEL FAILURE something":                    18,
		"no level here at all":                          0,
		// A level word that ends the record is a value, not its level.
		"<num> gige7 gige temperature <num> 1 critical": 0,
		"<num> node-0 node status <num> 1 error":        0,
	}
	for in, want := range cases {
		if got := severityFromTokens([]byte(in)); got != want {
			t.Errorf("severityFromTokens(%q) = %d, want %d", in, got, want)
		}
	}
}

func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{"", "a", "password=x", "10.0.0.1:80", "2015-10-18 18:01:47,978", "\xff\xfe\x00", "4111 1111 1111 1111", "<num> <ts>", "a?b=c&d=e"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, scratch := Canonicalize(nil, nil, in)
		// Masks only shorten or keep volatile tokens; a bound catches runaway growth.
		if len(out) > 2*len(in)+16 {
			t.Fatalf("canonical form grew from %d to %d bytes", len(in), len(out))
		}
		// Reusing the buffers gives the same bytes (no state leaks between calls).
		again, _ := Canonicalize(out[:0:0], scratch, in)
		if !bytes.Equal(out, again) {
			t.Fatalf("not deterministic: %q vs %q", out, again)
		}
		// Valid UTF-8 in, valid UTF-8 out: masks are ASCII and cuts fall on ASCII bytes.
		if utf8.Valid(in) && !utf8.Valid(out) {
			t.Fatalf("valid UTF-8 became invalid: %q -> %q", in, out)
		}
		red := Redact(nil, in)
		if bytes.Contains(in, []byte("password=hunter2")) && bytes.Contains(red, []byte("hunter2")) {
			t.Fatalf("secret survived redaction: %q", red)
		}
	})
}
