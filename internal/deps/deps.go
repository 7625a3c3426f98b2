//go:build tools

// Package deps pins modules that several packages will use, so that parallel
// work on the tree does not race on go.mod. It is never compiled.
package deps

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/klauspost/compress/s2"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	_ "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	_ "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/plogtest"
	_ "github.com/pressly/goose/v3"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "go.opentelemetry.io/collector/component/componenttest"
	_ "go.opentelemetry.io/collector/config/configopaque"
	_ "go.opentelemetry.io/collector/config/configoptional"
	_ "go.opentelemetry.io/collector/config/configretry"
	_ "go.opentelemetry.io/collector/confmap/confmaptest"
	_ "go.opentelemetry.io/collector/consumer/consumertest"
	_ "go.opentelemetry.io/collector/exporter/exporterhelper"
	_ "go.opentelemetry.io/collector/exporter/exportertest"
	_ "go.opentelemetry.io/collector/extension/xextension/storage"
	_ "go.opentelemetry.io/collector/processor/processorhelper"
	_ "go.opentelemetry.io/collector/processor/processortest"
	_ "go.opentelemetry.io/otel/metric"
	_ "golang.org/x/time/rate"
)
