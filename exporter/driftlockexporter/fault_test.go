package driftlockexporter

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/extension"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/driftlock/driftlock/exporter/driftlockexporter/internal/metadata"
	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// ownPostgres is a PostgreSQL server of this test alone, on a fixed port,
// so that the test can stop and restart it under the exporter.
type ownPostgres struct {
	script, dir, port, dsn string
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

func startOwnPostgres(t *testing.T) *ownPostgres {
	t.Helper()
	if testing.Short() {
		t.Skip("fault test restarts PostgreSQL: skipped with -short")
	}
	storetest.AdminDSN(t) // skip with a message when PostgreSQL is not set up
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	// Under /tmp (not t.TempDir, whose parents are private): the server
	// runs as the postgres user, which must reach the folder.
	dir, err := os.MkdirTemp("", "driftlock-fault-pg-")
	if err != nil {
		t.Fatal(err)
	}
	pg := &ownPostgres{script: filepath.Join(repoRoot(t), "scripts", "pg"), dir: dir, port: port}
	t.Cleanup(func() {
		_ = exec.Command(pg.script, "clean", pg.dir).Run()
		os.RemoveAll(pg.dir)
	})
	out := pg.run(t, "start")
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "export DRIFTLOCK_TEST_DSN="); ok {
			pg.dsn = v
		}
	}
	if pg.dsn == "" || !strings.Contains(pg.dsn, ":"+port+"/") {
		t.Fatalf("scripts/pg start printed no DSN on port %s: %s", port, out)
	}
	return pg
}

func (pg *ownPostgres) run(t *testing.T, cmd string) []byte {
	t.Helper()
	c := exec.Command(pg.script, cmd, pg.dir)
	c.Env = append(os.Environ(), "PG_PORT="+pg.port)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/pg %s: %v\n%s", cmd, err, out)
	}
	return out
}

// waitRows polls the row count until want or the deadline; it returns the
// last count seen.
func waitRows(t *testing.T, dsn string, want int, deadline time.Duration) int {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	end := time.Now().Add(deadline)
	got := -1
	for time.Now().Before(end) {
		if err := storetest.Pool(st).QueryRow(context.Background(), "SELECT count(*) FROM anomalies").Scan(&got); err == nil && got >= want {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
	return got
}

func distinctFingerprints(t *testing.T, dsn string) (rows, distinct int) {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := storetest.Pool(st).QueryRow(context.Background(), "SELECT count(*), count(DISTINCT fingerprint) FROM anomalies").Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	return rows, distinct
}

func faultConfig(dsn string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.DSN = configopaque.String(dsn)
	cfg.Retention = 0
	cfg.Timeout = 5 * time.Second
	cfg.BackOffConfig.Enabled = true
	cfg.BackOffConfig.InitialInterval = 50 * time.Millisecond
	cfg.BackOffConfig.MaxInterval = 500 * time.Millisecond
	cfg.BackOffConfig.MaxElapsedTime = 3 * time.Minute
	q := exporterhelper.NewDefaultQueueConfig()
	q.NumConsumers = 2
	q.QueueSize = 10_000
	q.BlockOnOverflow = true
	cfg.QueueSettings = configoptional.Some(q)
	return cfg
}

// N flagged records go through the real exporter (queue + retry) while
// PostgreSQL is stopped and restarted mid-stream: afterwards exactly N rows.
func TestFaultPostgresRestartMidStream(t *testing.T) {
	pg := startOwnPostgres(t)
	const requests, perRequest = 60, 50
	const n = requests * perRequest
	set, tt := testSettings(t)
	exp := startLogs(t, faultConfig(pg.dsn), set, componenttest.NewNopHost())
	ctx := context.Background()
	for r := 0; r < requests; r++ {
		switch r {
		case 20:
			if got := waitRows(t, pg.dsn, 1, 30*time.Second); got < 1 {
				t.Fatalf("nothing written before the outage (rows %d)", got)
			}
			pg.run(t, "stop")
		case 40:
			time.Sleep(time.Second) // let the consumers fail and back off
			pg.run(t, "start")
		}
		if err := exp.ConsumeLogs(ctx, flaggedLogs(r*perRequest, perRequest, all)); err != nil {
			t.Fatalf("request %d refused: %v", r, err)
		}
	}
	got := waitRows(t, pg.dsn, n, 2*time.Minute)
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	rows, distinct := distinctFingerprints(t, pg.dsn)
	if got != n || rows != n || distinct != n {
		t.Fatalf("after recovery: %d rows (%d distinct), want exactly %d", rows, distinct, n)
	}
	if e := counter(t, tt, "otelcol_exporter_driftlock_transient_errors"); e == 0 {
		t.Fatal("no transient error was seen: the outage did not hit the exporter")
	}
	if ins := counter(t, tt, "otelcol_exporter_driftlock_rows_inserted"); ins != n {
		t.Fatalf("rows_inserted = %d, want %d", ins, n)
	}
	t.Logf("%d rows after a PostgreSQL restart; %d transient errors retried, %d duplicate rows skipped",
		rows, counter(t, tt, "otelcol_exporter_driftlock_transient_errors"),
		counter(t, tt, "otelcol_exporter_driftlock_rows_duplicate"))
}

type storageHost struct {
	exts map[component.ID]component.Component
}

func (h storageHost) GetExtensions() map[component.ID]component.Component { return h.exts }

func startFileStorage(t *testing.T, dir string, id component.ID) (extension.Extension, component.Host) {
	t.Helper()
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = dir
	cfg.Compaction.Directory = dir
	set := extension.Settings{ID: id, TelemetrySettings: componenttest.NewNopTelemetrySettings(), BuildInfo: component.NewDefaultBuildInfo()}
	ext, err := f.Create(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ext.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	return ext, storageHost{exts: map[component.ID]component.Component{id: ext}}
}

// The collector stops while the persistent queue still holds data (the
// database is down); after a restart with the database back, every
// record arrives exactly once.
func TestFaultPersistentQueueSurvivesRestart(t *testing.T) {
	pg := startOwnPostgres(t)
	pg.run(t, "stop")
	storageDir := t.TempDir()
	storageID := component.MustNewIDWithName("file_storage", "driftlock")
	cfg := faultConfig(pg.dsn)
	cfg.QueueSettings.Get().StorageID = &storageID
	cfg.QueueSettings.Get().NumConsumers = 1
	const requests, perRequest = 10, 50
	const n = requests * perRequest
	ctx := context.Background()

	// First run: the database is down, everything stays queued on disk.
	ext, host := startFileStorage(t, storageDir, storageID)
	// The queue is stored under the exporter's ID: both runs use the same.
	exporterID := component.NewIDWithName(metadata.Type, "persistent")
	set, _ := testSettings(t)
	set.ID = exporterID
	set.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	exp := startLogs(t, cfg, set, host)
	for r := 0; r < requests; r++ {
		if err := exp.ConsumeLogs(ctx, flaggedLogs(r*perRequest, perRequest, all)); err != nil {
			t.Fatalf("request %d refused: %v", r, err)
		}
	}
	time.Sleep(500 * time.Millisecond) // a consumer is now retrying a request
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ext.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	files, _ := os.ReadDir(storageDir)
	if len(files) == 0 {
		t.Fatal("the persistent queue wrote nothing to disk")
	}

	// Second run: the database is back.
	pg.run(t, "start")
	ext2, host2 := startFileStorage(t, storageDir, storageID)
	set2, tt2 := testSettings(t)
	set2.ID = exporterID
	exp2 := startLogs(t, cfg, set2, host2)
	got := waitRows(t, pg.dsn, n, 2*time.Minute)
	if err := exp2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ext2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	rows, distinct := distinctFingerprints(t, pg.dsn)
	if got != n || rows != n || distinct != n {
		t.Fatalf("after restart: %d rows (%d distinct), want exactly %d", rows, distinct, n)
	}
	if ins := counter(t, tt2, "otelcol_exporter_driftlock_rows_inserted"); ins != n {
		t.Fatalf("second run inserted %d rows, want all %d from the persisted queue", ins, n)
	}
}
