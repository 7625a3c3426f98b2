# Driftlock. `make test` and `make demo` set up everything they need on a
# fresh machine (PostgreSQL and Chromium from Debian's packages, tools from the
# Go module proxy).
GO        ?= go
PG_DIR    ?= $(CURDIR)/.pg
BIN       ?= $(CURDIR)/bin
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION ?= v0.8.2
TEST_TIMEOUT ?= 45m
PKGS      ?= ./...
# The generated distro has no tests; under -race `go test` would still
# compile all of it (~5 min on 2 cores). The e2e tests build it (without
# -race) and exercise it as a real process instead.
TEST_PKGS ?= $(shell $(GO) list $(PKGS) | grep -v '/cmd/otelcol-driftlock$$')

.PHONY: all test test-short bench lint build eval fuzz deps pg-start pg-stop clean generate check-generated demo bench-e2e bench-api

all: lint test

deps:
	@scripts/deps

# Unit and integration tests with the race detector, against a throwaway
# PostgreSQL started (and stopped) here; then, without the race detector
# (under it they take minutes), the allocation checks and the whole-day
# Nezha checks (skipped with a message when ../shared is absent).
test: deps
	@set -e; eval "$$(scripts/pg start $(PG_DIR))"; \
	trap 'scripts/pg stop $(PG_DIR)' EXIT; \
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(TEST_PKGS); \
	$(GO) test -count=1 -run 'AllocatesNothing' ./internal/cbad
	$(GO) test -count=1 -run 'NezhaDay|SyntheticNetworkDelay' ./internal/nezhaeval

# Fast tests without the database or the race detector.
test-short:
	$(GO) test -short -count=1 $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1 $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@command -v staticcheck >/dev/null 2>&1 || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	PATH="$(GOBIN):$$PATH" staticcheck $(PKGS)

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/driftlock ./cmd/driftlock
	$(GO) build -o $(BIN)/otelcol-driftlock ./cmd/otelcol-driftlock

# The collector distribution: regenerate cmd/otelcol-driftlock from
# builder-config.yaml, or check the checked-in sources still match it.
generate:
	scripts/distro generate

check-generated:
	scripts/distro check

# One-command demo: PostgreSQL, collector, API + web page, a replay of
# ../shared/data/nezha (or synthetic data), a summary. Ctrl-C stops it all;
# DEMO_EXIT=1 prints the summary and exits.
demo: build
	@DRIFTLOCK_SKIP_BROWSER=1 scripts/deps
	@scripts/demo

# The built collector over loopback, with and without the driftlock
# processor, in one run (records/s and CPU per 1,000 log records).
bench-e2e: build
	$(GO) run ./e2e/cmd/bench-e2e -bin $(BIN)/otelcol-driftlock

# Every fuzzer for a bounded time each (FUZZTIME, default 30s). Fuzzers are
# found by name, so a new Fuzz* function is picked up without editing this.
FUZZTIME ?= 30s
fuzz:
	@set -e; for pkg in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$pkg/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "== $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# Detection quality on the labeled data in ../shared (BGL, NAB, loghub), then
# the Nezha day through the processor and the incident correlator (per-fault
# table, the trivial rules' rows, the references; the `nezha ...` lines last).
NEZHA_DAY ?= $(CURDIR)/../shared/data/nezha/2023-01-29
eval: build
	$(BIN)/driftlock eval
	@if [ -d "$(NEZHA_DAY)" ]; then $(BIN)/driftlock eval nezha --quiet "$(NEZHA_DAY)"; \
	else echo "eval nezha: skipped, $(NEZHA_DAY) not found (set NEZHA_DAY)"; fi

pg-start:
	@scripts/pg start $(PG_DIR)

pg-stop:
	@scripts/pg stop $(PG_DIR)

clean:
	scripts/pg clean $(PG_DIR)
	rm -rf $(BIN)

# API load benchmark: 1,000,000 anomalies, p50/p99 per query shape and list
# requests/s on loopback (slow: not part of `make test` or `make bench`).
bench-api: deps
	@set -e; eval "$$(scripts/pg start $(PG_DIR))"; \
	trap 'scripts/pg stop $(PG_DIR)' EXIT; \
	DRIFTLOCK_BENCH_API=1 $(GO) test -run '^$$' -bench BenchmarkAPI -benchtime 5s -timeout 30m ./internal/api/

# Soak: the built collector for about 5 minutes (SOAK_DURATION=60s for a
# short run) through two PostgreSQL restarts and a SIGKILL; prints records
# sent/stored/lost/duplicated, peak RSS and p99 scoring latency (soak/).
.PHONY: soak
soak: build
	@scripts/soak

# Store write throughput: InsertAnomalies and the exporter beside a bare pgx
# COPY of the same rows, batches of 1,000, one core (compare the rows/s).
.PHONY: bench-store
bench-store: deps
	@set -e; eval "$$(scripts/pg start $(PG_DIR))"; \
	trap 'scripts/pg stop $(PG_DIR)' EXIT; \
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1 -benchtime 50x ./internal/store/ ./exporter/driftlockexporter/
