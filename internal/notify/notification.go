package notify

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/driftlock/driftlock/internal/store"
)

// Notification is what a receiver gets about one incident event: the body
// of a webhook POST, and what an Alertmanager alert is built from. It is
// stored in the outbox as JSON when the event happens, so every attempt
// sends the same document.
type Notification struct {
	// Event is "opened", "changed" (a new leading service, a new ranked
	// service or a higher severity) or "closed".
	Event string `json:"event"`
	// IdempotencyKey is the same on every attempt of this notification and
	// differs between notifications: "<incident key>/r<revision>/<event>".
	IdempotencyKey string `json:"idempotency_key"`
	// Change says in words what happened ("opened", "new leader ts-x (was
	// ts-y)", "closed after 5m0s without evidence").
	Change   string   `json:"change,omitempty"`
	Incident Incident `json:"incident"`
	// Previous holds the leader and severity before a "changed" event when
	// either moved: an Alertmanager alert is identified by its labels, so
	// the alert under the old labels is resolved.
	Previous *Identity `json:"previous,omitempty"`
}

// Identity is what names an incident's alert in Alertmanager besides its key.
type Identity struct {
	Leader   string `json:"leader"`
	Severity string `json:"severity"`
}

// Incident is the incident as notifications carry it. Times are observed
// times (the records' own clocks).
type Incident struct {
	ID    int64  `json:"id"`
	Key   string `json:"key"`
	State string `json:"state"`
	Title string `json:"title"`
	// Leader is the most probable root-cause service; Services the ranked
	// list with the evidence behind each rank (as the API serves it).
	Leader         string          `json:"leader"`
	Services       json.RawMessage `json:"services"`
	Signals        []string        `json:"signals"`
	Severity       string          `json:"severity"`
	Size           int             `json:"size"`
	OpenedAt       time.Time       `json:"opened_at"`
	LastEvidenceAt time.Time       `json:"last_evidence_at"`
	ClosedAt       *time.Time      `json:"closed_at,omitempty"`
	// URL is the incident's page, when notify.public_url is set.
	URL string `json:"url,omitempty"`
}

// IdempotencyKey names one notification of an incident: its key, the
// revision (material changes so far) and the event.
func IdempotencyKey(incidentKey string, revision int, event string) string {
	return incidentKey + "/r" + strconv.Itoa(revision) + "/" + event
}

// New builds the notification of event about in.
func New(in *store.Incident, event, change string, previous *Identity, publicURL string) Notification {
	services := in.Services
	if len(services) == 0 {
		services = json.RawMessage("[]")
	}
	n := Notification{
		Event:          event,
		IdempotencyKey: IdempotencyKey(in.Key, in.Revision, event),
		Change:         change,
		Previous:       previous,
		Incident: Incident{ID: in.ID, Key: in.Key, State: in.State, Title: in.Title, Leader: in.Leader,
			Services: services, Signals: in.Signals, Severity: in.Severity, Size: in.Size,
			OpenedAt: in.OpenedAt.UTC(), LastEvidenceAt: in.LastEvidenceAt.UTC(), URL: incidentURL(publicURL, in.ID)},
	}
	if n.Incident.Signals == nil {
		n.Incident.Signals = []string{}
	}
	if in.ClosedAt != nil {
		c := in.ClosedAt.UTC()
		n.Incident.ClosedAt = &c
	}
	return n
}

// incidentURL is the incident's place on the web page.
func incidentURL(publicURL string, id int64) string {
	if publicURL == "" || id == 0 {
		return ""
	}
	return strings.TrimRight(publicURL, "/") + "/#/incidents/" + url.PathEscape(strconv.FormatInt(id, 10))
}

// OutboxItems turns a notification into one outbox row per receiver name.
func OutboxItems(n Notification, receivers []string) ([]store.OutboxItem, error) {
	payload, err := json.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("notify: encode notification: %w", err)
	}
	items := make([]store.OutboxItem, 0, len(receivers))
	for _, r := range receivers {
		items = append(items, store.OutboxItem{Receiver: r, IncidentID: n.Incident.ID, Event: n.Event,
			IdempotencyKey: n.IdempotencyKey, Payload: payload})
	}
	return items, nil
}
