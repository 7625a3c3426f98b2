// Package grafana holds Driftlock's Grafana dashboards (provisioning-ready
// JSON) and the test that checks their queries against the real schema and
// the real metric names.
package grafana

import "embed"

// Dashboards are the dashboard JSON files of this folder.
//
//go:embed *.json
var Dashboards embed.FS
