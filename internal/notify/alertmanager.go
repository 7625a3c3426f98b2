package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/prometheus/alertmanager/api/v2/models"
)

// AlertName is the alertname label of every Driftlock incident alert.
const AlertName = "DriftlockIncident"

// reservedLabels are the labels Driftlock sets on its alerts. An incident's
// alert is identified by alertname, incident, service and severity; when
// the leading service or the severity changes, the alert under the old
// labels is resolved and one under the new labels fires.
var reservedLabels = map[string]bool{"alertname": true, "incident": true, "service": true, "severity": true}

// Alertmanager posts incidents to a Prometheus Alertmanager's API v2
// (POST /api/v2/alerts) with the official API models.
type Alertmanager struct {
	name     string
	endpoint string
	token    []byte
	labels   map[string]string
	resend   time.Duration
	client   *http.Client
	runbook  string
}

func newAlertmanager(c AlertmanagerConfig, client *http.Client, runbook string) (*Alertmanager, error) {
	am := &Alertmanager{name: c.Name, endpoint: strings.TrimRight(c.URL, "/") + "/api/v2/alerts",
		labels: c.Labels, resend: c.ResendInterval, client: client, runbook: runbook}
	if c.BearerToken.IsSet() {
		t, err := c.BearerToken.Resolve()
		if err != nil {
			return nil, fmt.Errorf("alertmanager %s: bearer_token: %w", c.Name, err)
		}
		am.token = t
	}
	return am, nil
}

// Name is the receiver's configured name.
func (a *Alertmanager) Name() string { return a.name }

// Send posts the notification's alert: firing until now + 4 x the resend
// interval while the incident is open, resolved (endsAt now) once closed,
// plus the resolution of the alert under the previous labels if the
// leader or the severity moved.
func (a *Alertmanager) Send(ctx context.Context, n *Notification, now time.Time) error {
	alerts := models.PostableAlerts{a.alert(&n.Incident, n.Incident.Leader, n.Incident.Severity, n.Change, now)}
	if p := n.Previous; p != nil && (p.Leader != n.Incident.Leader || p.Severity != n.Incident.Severity) {
		old := a.alert(&n.Incident, p.Leader, p.Severity, n.Change, now)
		old.EndsAt = strfmt.DateTime(now)
		alerts = append(alerts, old)
	}
	return a.post(ctx, alerts)
}

// Refresh re-sends the alerts of the given open incidents (the resend that
// keeps them firing past their endsAt).
func (a *Alertmanager) Refresh(ctx context.Context, open []Incident, now time.Time) error {
	if len(open) == 0 {
		return nil
	}
	alerts := make(models.PostableAlerts, 0, len(open))
	for i := range open {
		alerts = append(alerts, a.alert(&open[i], open[i].Leader, open[i].Severity, "", now))
	}
	return a.post(ctx, alerts)
}

// ResendInterval is how often Refresh must run.
func (a *Alertmanager) ResendInterval() time.Duration { return a.resend }

func (a *Alertmanager) alert(in *Incident, leader, severity, change string, now time.Time) *models.PostableAlert {
	labels := models.LabelSet{}
	maps.Copy(labels, a.labels)
	labels["alertname"] = AlertName
	labels["incident"] = in.Key
	labels["service"] = leader
	labels["severity"] = severity
	annotations := models.LabelSet{
		"summary":     in.Title,
		"description": describe(in, change),
	}
	if in.URL != "" {
		annotations["incident_url"] = in.URL
	}
	if a.runbook != "" {
		annotations["runbook_url"] = a.runbook
	}
	end := now.Add(4 * a.resend)
	if in.State != "open" {
		end = now
	}
	start := in.OpenedAt
	if start.After(end) {
		start = end // an observed clock ahead of ours must not make the alert invalid
	}
	al := &models.PostableAlert{
		Alert:       models.Alert{Labels: labels, GeneratorURL: strfmt.URI(in.URL)},
		Annotations: annotations,
		StartsAt:    strfmt.DateTime(start.UTC()),
		EndsAt:      strfmt.DateTime(end.UTC()),
	}
	return al
}

// describe is the description annotation: what changed, the ranked
// services and the size, in a few lines.
func describe(in *Incident, change string) string {
	var b strings.Builder
	if change != "" {
		fmt.Fprintf(&b, "%s. ", strings.TrimSuffix(change, "."))
	}
	fmt.Fprintf(&b, "%d anomalies in %s since %s (observed time).", in.Size, strings.Join(in.Signals, ", "),
		in.OpenedAt.UTC().Format(time.RFC3339))
	var ranked []struct {
		Service string   `json:"service"`
		Why     []string `json:"why"`
	}
	if json.Unmarshal(in.Services, &ranked) == nil && len(ranked) > 0 {
		b.WriteString(" Probable root cause:")
		for i, r := range ranked {
			if i == 3 {
				fmt.Fprintf(&b, " (+%d more)", len(ranked)-3)
				break
			}
			fmt.Fprintf(&b, " %d. %s", i+1, r.Service)
			if len(r.Why) > 0 {
				fmt.Fprintf(&b, " (%s)", strings.Join(r.Why, "; "))
			}
			b.WriteString(";")
		}
	}
	return strings.TrimSuffix(b.String(), ";")
}

func (a *Alertmanager) post(ctx context.Context, alerts models.PostableAlerts) error {
	if err := alerts.Validate(strfmt.Default); err != nil {
		return permanent(fmt.Errorf("alert does not validate against the Alertmanager API: %v", err))
	}
	body, err := json.Marshal(alerts)
	if err != nil {
		return permanent(fmt.Errorf("encode alerts: %v", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.endpoint, bytes.NewReader(body))
	if err != nil {
		return permanent(fmt.Errorf("build request: %v", redactURLError(err)))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if a.token != nil {
		req.Header.Set("Authorization", "Bearer "+string(a.token))
	}
	return do(a.client, req)
}
