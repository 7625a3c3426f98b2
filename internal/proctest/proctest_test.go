package proctest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestFreePortsDistinctAndBindable(t *testing.T) {
	ports, err := FreePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v: not distinct positive ports", ports)
		}
		seen[p] = true
	}
	// Closed on return: the caller can bind them.
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])))
	if err != nil {
		t.Fatalf("port %d not free after FreePorts: %v", ports[0], err)
	}
	l.Close()
}

func TestSyncBufferConcurrent(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_, _ = b.Write([]byte("x"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if got := len(b.String()); got != 400 {
		t.Fatalf("len = %d, want 400", got)
	}
}

func TestStartCapturesOutputAndExit(t *testing.T) {
	var out SyncBuffer
	cmd := exec.Command("sh", "-c", "echo hello; exit 3")
	cmd.Stdout = &out
	p, err := Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	var ee *exec.ExitError
	if !errors.As(p.Err(), &ee) || ee.ExitCode() != 3 {
		t.Fatalf("Err = %v, want exit status 3", p.Err())
	}
	if out.String() != "hello\n" {
		t.Fatalf("output %q", out.String())
	}
}

func TestWaitHealthy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	p, err := Start(exec.Command("sleep", "30"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if err := p.WaitHealthy(context.Background(), port, 5*time.Second); err != nil {
		t.Fatalf("healthy server: %v", err)
	}

	// Nothing listens on a free port: the timeout is reported.
	free, err := FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitHealthy(context.Background(), free[0], 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "not healthy after") {
		t.Fatalf("no listener: %v", err)
	}

	// A process that exits is reported at once, not after the timeout.
	q, err := Start(exec.Command("false"))
	if err != nil {
		t.Fatal(err)
	}
	<-q.Done()
	if err := q.WaitHealthy(context.Background(), free[0], time.Minute); err == nil || !strings.Contains(err.Error(), "exited during start") {
		t.Fatalf("exited process: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.WaitHealthy(ctx, free[0], time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
}

func TestStop(t *testing.T) {
	p, err := Start(exec.Command("sleep", "30"))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Stop(syscall.SIGTERM, 10*time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || errors.Is(err, ErrKilled) {
		t.Fatalf("SIGTERM to sleep: %v, want the signal exit", err)
	}
	if !p.Exited() {
		t.Fatal("not exited after Stop")
	}

	// A process ignoring SIGTERM is killed after the grace period.
	// (exec keeps the ignored disposition, so the one process ignores it.)
	var out SyncBuffer
	cmd := exec.Command("sh", "-c", `trap "" TERM; echo ready; exec sleep 30`)
	cmd.Stdout = &out
	q, err := Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(out.String(), "ready") {
		if q.Exited() {
			t.Fatalf("shell exited: %v", q.Err())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := q.Stop(syscall.SIGTERM, 300*time.Millisecond); !errors.Is(err, ErrKilled) {
		t.Fatalf("ignored SIGTERM: %v, want ErrKilled", err)
	}
	if !q.Exited() {
		t.Fatal("not exited after kill")
	}
}
