package notify

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config is the `notify:` part of serve's incidents configuration (see
// README.md for the tables). The zero value sends nothing.
type Config struct {
	// PublicURL is the web page's base URL (e.g. https://driftlock.example);
	// notifications link to PublicURL/#/incidents/ID. Empty: no links.
	PublicURL string `yaml:"public_url"`
	// RunbookURL is the runbook_url annotation of every alert (default:
	// the README's "Incidents and alerting" section).
	RunbookURL string `yaml:"runbook_url"`
	// Alertmanagers receive one alert per open incident.
	Alertmanagers []AlertmanagerConfig `yaml:"alertmanagers"`
	// Webhooks receive a signed JSON document per incident event.
	Webhooks []WebhookConfig `yaml:"webhooks"`
	// Timeout bounds one delivery attempt (default 10s).
	Timeout time.Duration `yaml:"timeout"`
	// MaxAttempts and MaxAge bound the retries of one notification: it is
	// abandoned (kept in the outbox, counted as failed) after either
	// (defaults 20 and 24h). Retries back off exponentially from
	// RetryInitial (default 2s) to RetryMax (default 5m), with jitter.
	MaxAttempts  int           `yaml:"max_attempts"`
	MaxAge       time.Duration `yaml:"max_age"`
	RetryInitial time.Duration `yaml:"retry_initial"`
	RetryMax     time.Duration `yaml:"retry_max"`
	// Poll is how often the outbox is checked for due notifications
	// (default 1s; new ones also wake the sender at once).
	Poll time.Duration `yaml:"poll"`
}

// AlertmanagerConfig is one Prometheus Alertmanager.
type AlertmanagerConfig struct {
	// Name identifies the receiver in the outbox and in metrics (default
	// "alertmanager", then "alertmanager-2", ...).
	Name string `yaml:"name"`
	// URL is the Alertmanager's base URL (http://host:9093); alerts go to
	// URL/api/v2/alerts.
	URL string `yaml:"url"`
	// ResendInterval: open incidents are re-sent this often, each with
	// endsAt = now + 4 x ResendInterval, so an Alertmanager that restarts
	// or misses one post still shows them, and an alert whose sender died
	// resolves by itself (default 1m, as Prometheus).
	ResendInterval time.Duration `yaml:"resend_interval"`
	// BearerToken is sent as "Authorization: Bearer ..." (optional).
	BearerToken Secret `yaml:"bearer_token"`
	// Labels are added to every alert (e.g. team: sre); they cannot
	// replace the ones Driftlock sets.
	Labels map[string]string `yaml:"labels"`
}

// WebhookConfig is one generic JSON webhook.
type WebhookConfig struct {
	// Name identifies the receiver (default "webhook", "webhook-2", ...).
	Name string `yaml:"name"`
	// URL receives POSTs of the JSON document (see README.md).
	URL string `yaml:"url"`
	// Secret keys the HMAC-SHA256 signature header; required.
	Secret Secret `yaml:"secret"`
}

// Secret is a value read from an environment variable or a file, never
// written in the configuration itself, and never printed.
type Secret struct {
	Env  string `yaml:"env"`
	File string `yaml:"file"`
}

// IsSet reports whether a source is configured.
func (s Secret) IsSet() bool { return s.Env != "" || s.File != "" }

// Resolve reads the secret. Errors name the source, never the value.
func (s Secret) Resolve() ([]byte, error) {
	switch {
	case s.Env != "" && s.File != "":
		return nil, errors.New("give either env or file, not both")
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok || v == "" {
			return nil, fmt.Errorf("environment variable %s is not set or empty", s.Env)
		}
		return []byte(v), nil
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the path is named below; the error adds nothing secret
			}
			return nil, fmt.Errorf("read secret file %s: %v", s.File, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return nil, fmt.Errorf("secret file %s is empty", s.File)
		}
		return []byte(v), nil
	}
	return nil, errors.New("no secret source (env or file)")
}

// Defaults.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultMaxAttempts    = 20
	DefaultMaxAge         = 24 * time.Hour
	DefaultRetryInitial   = 2 * time.Second
	DefaultRetryMax       = 5 * time.Minute
	DefaultPoll           = time.Second
	DefaultResendInterval = time.Minute
	DefaultRunbookURL     = "https://github.com/driftlock/driftlock#incidents-and-alerting"
)

// withDefaults fills the zero settings and the receiver names.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Timeout, DefaultTimeout)
	def(&c.MaxAge, DefaultMaxAge)
	def(&c.RetryInitial, DefaultRetryInitial)
	def(&c.RetryMax, DefaultRetryMax)
	def(&c.Poll, DefaultPoll)
	if c.RunbookURL == "" {
		c.RunbookURL = DefaultRunbookURL
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	c.Alertmanagers = append([]AlertmanagerConfig(nil), c.Alertmanagers...)
	for i := range c.Alertmanagers {
		a := &c.Alertmanagers[i]
		def(&a.ResendInterval, DefaultResendInterval)
		if a.Name == "" {
			a.Name = numbered("alertmanager", i)
		}
	}
	c.Webhooks = append([]WebhookConfig(nil), c.Webhooks...)
	for i := range c.Webhooks {
		if c.Webhooks[i].Name == "" {
			c.Webhooks[i].Name = numbered("webhook", i)
		}
	}
	return c
}

func numbered(base string, i int) string {
	if i == 0 {
		return base
	}
	return fmt.Sprintf("%s-%d", base, i+1)
}

// Enabled reports whether any receiver is configured.
func (c *Config) Enabled() bool { return len(c.Alertmanagers)+len(c.Webhooks) > 0 }

// Validate reports every unusable setting, naming it. Secrets are checked
// for presence (the source exists), not printed.
func (c *Config) Validate() error {
	d := c.withDefaults()
	var errs []error
	if d.PublicURL != "" {
		if err := checkURL(d.PublicURL); err != nil {
			errs = append(errs, fmt.Errorf("notify.public_url: %w", err))
		}
	}
	if err := checkURL(d.RunbookURL); err != nil {
		errs = append(errs, fmt.Errorf("notify.runbook_url: %w", err))
	}
	for _, v := range []struct {
		name string
		d    time.Duration
	}{{"timeout", d.Timeout}, {"max_age", d.MaxAge}, {"retry_initial", d.RetryInitial}, {"retry_max", d.RetryMax}, {"poll", d.Poll}} {
		if v.d < 0 {
			errs = append(errs, fmt.Errorf("notify.%s must be positive, got %v", v.name, v.d))
		}
	}
	if d.RetryMax < d.RetryInitial {
		errs = append(errs, fmt.Errorf("notify.retry_max (%v) must be at least retry_initial (%v)", d.RetryMax, d.RetryInitial))
	}
	if d.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("notify.max_attempts must be at least 1, got %d", d.MaxAttempts))
	}
	names := map[string]bool{}
	unique := func(where, name string) {
		if names[name] {
			errs = append(errs, fmt.Errorf("%s: receiver name %q is used twice", where, name))
		}
		names[name] = true
	}
	for i, a := range d.Alertmanagers {
		where := fmt.Sprintf("notify.alertmanagers[%d]", i)
		unique(where, a.Name)
		if err := checkURL(a.URL); err != nil {
			errs = append(errs, fmt.Errorf("%s.url: %w", where, err))
		}
		if a.ResendInterval < time.Second {
			errs = append(errs, fmt.Errorf("%s.resend_interval must be at least 1s, got %v", where, a.ResendInterval))
		}
		if a.BearerToken.IsSet() {
			if _, err := a.BearerToken.Resolve(); err != nil {
				errs = append(errs, fmt.Errorf("%s.bearer_token: %w", where, err))
			}
		}
		for k := range a.Labels {
			if reservedLabels[k] {
				errs = append(errs, fmt.Errorf("%s.labels: %q is set by Driftlock and cannot be overridden", where, k))
			}
		}
	}
	for i, w := range d.Webhooks {
		where := fmt.Sprintf("notify.webhooks[%d]", i)
		unique(where, w.Name)
		if err := checkURL(w.URL); err != nil {
			errs = append(errs, fmt.Errorf("%s.url: %w", where, err))
		}
		if _, err := w.Secret.Resolve(); err != nil {
			errs = append(errs, fmt.Errorf("%s.secret: %w", where, err))
		}
	}
	return errors.Join(errs...)
}

// checkURL accepts absolute http(s) URLs. The error never repeats the URL
// (it may carry credentials).
func checkURL(raw string) error {
	if raw == "" {
		return errors.New("missing")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme must be http or https, got %q", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	return nil
}
