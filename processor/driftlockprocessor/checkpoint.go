package driftlockprocessor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"

	"github.com/driftlock/driftlock/internal/cbad"
)

// checkpointMagic opens every checkpoint value; the version byte lets a
// later format be told apart from this one.
const checkpointMagic = "DLCK\x01"

var (
	errStorageNotFound = errors.New("storage extension not found")
	errNotStorage      = errors.New("extension is not a storage extension")
	errBadCheckpoint   = errors.New("checkpoint is not a driftlock checkpoint")
)

// checkpointer saves the detector's state through a storage extension
// periodically and on shutdown, and restores it on start, so a restart does
// not open a new warm-up period.
type checkpointer struct {
	e      *engine
	mu     sync.Mutex // serializes snapshots (periodic vs shutdown)
	client storage.Client
	buf    bytes.Buffer
	stop   chan struct{}
	done   chan struct{}
}

func newCheckpointer(e *engine) *checkpointer { return &checkpointer{e: e} }

// key is the storage key of this signal's detector.
func (c *checkpointer) key() string { return "detector/" + c.e.signal }

func (c *checkpointer) start(ctx context.Context, host component.Host) error {
	id := *c.e.cfg.Storage
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return fmt.Errorf("driftlock: storage %q: %w", id, errStorageNotFound)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return fmt.Errorf("driftlock: storage %q: %w", id, errNotStorage)
	}
	client, err := se.GetClient(ctx, component.KindProcessor, c.e.id, c.e.signal)
	if err != nil {
		return fmt.Errorf("driftlock: storage %q: %w", id, err)
	}
	c.client = client
	c.restore(ctx)
	if iv := c.e.cfg.CheckpointInterval; iv > 0 {
		c.stop = make(chan struct{})
		c.done = make(chan struct{})
		go c.loop(iv)
	}
	return nil
}

// restore loads the last checkpoint. A missing, foreign or unreadable
// checkpoint is logged and counted, never fatal: the pipeline must start,
// at worst with a new warm-up.
func (c *checkpointer) restore(ctx context.Context) {
	data, err := c.client.Get(ctx, c.key())
	if err != nil {
		c.fail(ctx, "read checkpoint", err)
		return
	}
	if data == nil {
		return
	}
	want := stateHash(c.e.cfg, c.e.form)
	rest, ok := bytes.CutPrefix(data, []byte(checkpointMagic))
	if !ok || len(rest) < 1 || len(rest) < 1+int(rest[0]) {
		c.fail(ctx, "restore checkpoint", errBadCheckpoint)
		return
	}
	got := string(rest[1 : 1+int(rest[0])])
	if got != want {
		c.e.logger.Info("settings that shape the learned state changed since the checkpoint; starting a new warm-up",
			zap.String("signal", c.e.signal), zap.String("checkpoint", got), zap.String("current", want))
		return
	}
	if err := c.e.det.Restore(bytes.NewReader(rest[1+int(rest[0]):])); err != nil {
		if errors.Is(err, cbad.ErrSnapshotConfig) {
			c.e.logger.Info("checkpoint taken with incompatible detector settings; starting a new warm-up",
				zap.String("signal", c.e.signal), zap.Error(err))
			return
		}
		c.fail(ctx, "restore checkpoint", err)
		return
	}
	st := c.e.det.Stats()
	c.e.logger.Info("restored detector checkpoint", zap.String("signal", c.e.signal),
		zap.Int("streams", st.ActiveStreams), zap.Int("bytes", len(data)))
}

func (c *checkpointer) loop(iv time.Duration) {
	defer close(c.done)
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), iv)
			_ = c.save(ctx)
			cancel()
		}
	}
}

// save writes one checkpoint: magic, state hash, snapshot.
func (c *checkpointer) save(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Reset()
	c.buf.WriteString(checkpointMagic)
	h := stateHash(c.e.cfg, c.e.form)
	c.buf.WriteByte(byte(len(h)))
	c.buf.WriteString(h)
	if err := c.e.det.Snapshot(&c.buf); err != nil {
		c.fail(ctx, "snapshot detector", err)
		return err
	}
	if err := c.client.Set(ctx, c.key(), c.buf.Bytes()); err != nil {
		c.fail(ctx, "write checkpoint", err)
		return err
	}
	c.e.tb.ProcessorDriftlockCheckpoints.Add(ctx, 1, c.e.sigAttr)
	// Do not let one large snapshot pin its memory between checkpoints.
	if c.buf.Cap() > 64<<20 {
		c.buf = bytes.Buffer{}
	}
	return nil
}

func (c *checkpointer) fail(ctx context.Context, what string, err error) {
	c.e.tb.ProcessorDriftlockCheckpointErrors.Add(ctx, 1, c.e.sigAttr)
	c.e.logger.Warn("driftlock checkpoint failed", zap.String("signal", c.e.signal),
		zap.String("op", what), zap.Error(err))
}

// shutdown stops the periodic loop, writes a last checkpoint and closes the
// client. Safe to call when start never ran.
func (c *checkpointer) shutdown(ctx context.Context) error {
	if c.stop != nil {
		close(c.stop)
		<-c.done
		c.stop = nil
	}
	if c.client == nil {
		return nil
	}
	err := c.save(ctx)
	if cerr := c.client.Close(ctx); cerr != nil {
		err = errors.Join(err, cerr)
	}
	c.client = nil
	if err != nil {
		return fmt.Errorf("driftlock: final checkpoint: %w", err)
	}
	return nil
}
