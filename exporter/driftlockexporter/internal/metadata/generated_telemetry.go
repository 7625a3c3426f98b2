// Code written by hand in mdatagen's shape (mdatagen is not served here).

package metadata

import (
	"errors"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"go.opentelemetry.io/collector/component"
)

// Meter returns the component's meter.
func Meter(settings component.TelemetrySettings) metric.Meter {
	return settings.MeterProvider.Meter(ScopeName)
}

// TelemetryBuilder holds the component's self-telemetry instruments; see
// documentation.md.
type TelemetryBuilder struct {
	meter                                 metric.Meter
	ExporterDriftlockRowsInserted         metric.Int64Counter
	ExporterDriftlockRowsDuplicate        metric.Int64Counter
	ExporterDriftlockRowsDropped          metric.Int64Counter
	ExporterDriftlockRecordsSkipped       metric.Int64Counter
	ExporterDriftlockTransientErrors      metric.Int64Counter
	ExporterDriftlockRetentionRowsDeleted metric.Int64Counter
	ExporterDriftlockServiceEdgesWritten  metric.Int64Counter
	ExporterDriftlockServiceEdgesFailed   metric.Int64Counter
}

// NewTelemetryBuilder creates every instrument of the component.
func NewTelemetryBuilder(settings component.TelemetrySettings) (*TelemetryBuilder, error) {
	builder := TelemetryBuilder{}
	if settings.MeterProvider == nil {
		builder.meter = noop.Meter{}
	} else {
		builder.meter = Meter(settings)
	}
	var err, errs error
	builder.ExporterDriftlockRowsInserted, err = builder.meter.Int64Counter(
		"otelcol_exporter_driftlock_rows_inserted",
		metric.WithDescription("Anomaly rows written to PostgreSQL."),
		metric.WithUnit("{row}"),
	)
	errs = errors.Join(errs, err)
	builder.ExporterDriftlockRowsDuplicate, err = builder.meter.Int64Counter(
		"otelcol_exporter_driftlock_rows_duplicate",
		metric.WithDescription("Rows skipped because their fingerprint was already stored (retries, replays)."),
		metric.WithUnit("{row}"),
	)
	errs = errors.Join(errs, err)
	builder.ExporterDriftlockRowsDropped, err = builder.meter.Int64Counter(
		"otelcol_exporter_driftlock_rows_dropped",
		metric.WithDescription("Rows PostgreSQL refused for their content (permanent errors); never retried."),
		metric.WithUnit("{row}"),
	)
	errs = errors.Join(errs, err)
	builder.ExporterDriftlockRecordsSkipped, err = builder.meter.Int64Counter(
		"otelcol_exporter_driftlock_records_skipped",
		metric.WithDescription("Records not stored because they were not flagged (only_anomalies)."),
		metric.WithUnit("{record}"),
	)
	errs = errors.Join(errs, err)
	builder.ExporterDriftlockTransientErrors, err = builder.meter.Int64Counter(
		"otelcol_exporter_driftlock_transient_errors",
		metric.WithDescription("Batches that failed with a retryable error (handed back to retry_on_failure)."),
		metric.WithUnit("{batch}"),
	)
	errs = errors.Join(errs, err)
	builder.ExporterDriftlockRetentionRowsDeleted, err = builder.meter.Int64Counter(
		"otelcol_exporter_driftlock_retention_rows_deleted",
		metric.WithDescription("Anomaly rows deleted by retention."),
		metric.WithUnit("{row}"),
	)
	errs = errors.Join(errs, err)
	builder.ExporterDriftlockServiceEdgesWritten, err = builder.meter.Int64Counter(
		"otelcol_exporter_driftlock_service_edges_written",
		metric.WithDescription("Service graph edges (caller -> callee, one per flush) upserted into service_edges."),
		metric.WithUnit("{edge}"),
	)
	errs = errors.Join(errs, err)
	builder.ExporterDriftlockServiceEdgesFailed, err = builder.meter.Int64Counter(
		"otelcol_exporter_driftlock_service_edges_failed",
		metric.WithDescription("Service graph edges whose write failed (kept for the next flush; anomaly writes are not affected)."),
		metric.WithUnit("{edge}"),
	)
	errs = errors.Join(errs, err)
	return &builder, errs
}
