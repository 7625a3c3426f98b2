package proctest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"time"
)

// ErrKilled is returned (wrapped) by Stop when the process did not exit
// within its grace period and was killed.
var ErrKilled = errors.New("killed")

// Process is a started child whose exit is awaited in the background, so
// callers can select on its end while doing other things.
type Process struct {
	Cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts cmd (its Stdout, Stderr, Env and so on already set).
func Start(cmd *exec.Cmd) (*Process, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// Done is closed once the process has exited and Wait has returned.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is what Wait returned; only meaningful once Done is closed.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill kills the process (if it still runs) and waits for it.
func (p *Process) Kill() {
	if !p.Exited() {
		_ = p.Cmd.Process.Kill()
	}
	<-p.done
}

// Stop sends sig and waits up to grace for the exit, returning what Wait
// returned. When the process outlives grace it is killed and Stop returns
// an error wrapping ErrKilled.
func (p *Process) Stop(sig os.Signal, grace time.Duration) error {
	if err := p.Cmd.Process.Signal(sig); err != nil && !p.Exited() {
		return fmt.Errorf("%v: %w", sig, err)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(grace):
		p.Kill()
		return fmt.Errorf("did not exit within %s of %v: %w", grace, sig, ErrKilled)
	}
}

// WaitHealthy polls http://127.0.0.1:port/ (the collector's health_check
// extension) every 100 ms until it answers 200. It fails early when the
// process exits or ctx ends, and after timeout.
func (p *Process) WaitHealthy(ctx context.Context, port int, timeout time.Duration) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	deadline := time.Now().Add(timeout)
	for {
		if p.Exited() {
			return fmt.Errorf("exited during start: %v", p.err)
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not healthy after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
		case <-time.After(100 * time.Millisecond):
		}
	}
}
