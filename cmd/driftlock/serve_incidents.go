package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/driftlock/driftlock/internal/correlator"
	"github.com/driftlock/driftlock/internal/notify"
	"github.com/driftlock/driftlock/internal/store"
)

// incidentFlags are serve's (and incidents rebuild's) settings of the
// incident correlator and its notifications.
type incidentFlags struct {
	config       string
	enabled      bool
	alertmanager string
	publicURL    string
}

func addIncidentFlags(fs *flag.FlagSet, withServe bool) *incidentFlags {
	f := &incidentFlags{}
	fs.StringVar(&f.config, "incidents-config", "", "YAML file with the correlator: and notify: sections (receivers, secrets from env or files; see README, Incidents and alerting)")
	if withServe {
		fs.BoolVar(&f.enabled, "correlator", true, "run the incident correlator (one replica is active, the others stand by)")
		fs.StringVar(&f.alertmanager, "alertmanager-url", "", "send incidents to this Prometheus Alertmanager (adds to the config file's receivers)")
		fs.StringVar(&f.publicURL, "public-url", "", "base URL of this server's web page, for links in notifications (overrides notify.public_url)")
	}
	return f
}

// load reads and checks the configuration; errors are usage errors.
func (f *incidentFlags) load() (correlator.Config, notify.Config, error) {
	ccfg, ncfg := correlator.DefaultConfig(), notify.Config{}
	if f.config != "" {
		b, err := os.ReadFile(f.config)
		if err != nil {
			return ccfg, ncfg, fmt.Errorf("%w: --incidents-config: %v", errUsage, err)
		}
		// Strict: a misspelt key is an error, not a silently ignored setting.
		doc := struct {
			Correlator *correlator.Config `yaml:"correlator"`
			Notify     *notify.Config     `yaml:"notify"`
		}{&ccfg, &ncfg}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
			return ccfg, ncfg, fmt.Errorf("%w: --incidents-config %s: %v", errUsage, f.config, err)
		}
	}
	if f.alertmanager != "" {
		ncfg.Alertmanagers = append(ncfg.Alertmanagers, notify.AlertmanagerConfig{Name: "alertmanager-flag", URL: f.alertmanager})
	}
	if f.publicURL != "" {
		ncfg.PublicURL = f.publicURL
	}
	if err := errors.Join(ccfg.Validate(), ncfg.Validate()); err != nil {
		return ccfg, ncfg, fmt.Errorf("%w: %v", errUsage, err)
	}
	return ccfg, ncfg, nil
}

// startIncidents runs the correlator (and its notifier) in the background;
// stop ends it and blocks until it has let go of the store (and its lock).
func startIncidents(ctx context.Context, st *store.Store, enabled bool, ccfg correlator.Config, ncfg notify.Config,
	log *slog.Logger, reg prometheus.Registerer) (stop func(), err error) {
	if !enabled || !ccfg.Enabled {
		log.Info("incident correlator disabled")
		return func() {}, nil
	}
	var notifier *notify.Notifier
	if ncfg.Enabled() {
		if notifier, err = notify.NewNotifier(ncfg, st, log, reg); err != nil {
			return nil, err
		}
	}
	run, err := correlator.New(st, ccfg, notifier, log, reg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { run.Run(ctx) })
	return func() { cancel(); wg.Wait() }, nil
}
