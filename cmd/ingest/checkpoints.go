package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/restless-stream/ingest/checkpoint"
)

const checkpointsUsage = `Usage: ingest checkpoints <operation> -c FILE

Operations (JSON on standard output):
  list                     every configured stream (and, for the file store, every
                           checkpoint file) with its cursor
  show STREAM              one stream's checkpoint
  set STREAM CURSOR        make the stream resume after CURSOR (an event_id)
  reset STREAM             remove the checkpoint: the stream starts from since (or live)

The store is checkpoint.type of the configuration: file or nats_kv. list and show
read while a daemon runs; set and reset refuse while a daemon holds the stream
(exit 1, naming it).
`

// checkpointEntry is one stream's checkpoint as the command prints it.
type checkpointEntry struct {
	Stream     string `json:"stream"`
	Cursor     string `json:"cursor,omitempty"`
	Exists     bool   `json:"exists"`
	Checkpoint string `json:"checkpoint"`
	Configured bool   `json:"configured"`
}

// cmdCheckpoints is `ingest checkpoints list|show|set|reset`.
func cmdCheckpoints(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(e.stderr, checkpointsUsage)
		if len(args) == 0 {
			return usagef("checkpoints: an operation is required")
		}
		return flag.ErrHelp
	}
	op := args[0]
	want := map[string]int{"list": 0, "show": 1, "set": 2, "reset": 1}
	n, ok := want[op]
	if !ok {
		fmt.Fprint(e.stderr, checkpointsUsage)
		return usagef("checkpoints: unknown operation %q", op)
	}
	fs := newFlagSet("checkpoints "+op, e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, checkpointsUsage) }
	var cf configFlags
	cf.register(fs)
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != n {
		return usagef("checkpoints %s: expected %d argument(s), got %d", op, n, len(pos))
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	if cfg.Checkpoint.Type == "memory" {
		return usagef("checkpoints: checkpoint.type is memory: there is nothing kept to inspect")
	}
	if len(pos) > 0 {
		if err := checkpoint.ValidateStream(pos[0]); err != nil {
			return usagef("checkpoints %s: %v", op, err)
		}
	}
	if op == "set" && !validSince(pos[1]) {
		return usagef("checkpoints set: %q is not a cursor (an event_id such as 1780793376562)", pos[1])
	}
	ctx, stop := signalContext(ctx)
	defer stop()

	cs, err := openCheckpointStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer cs.close()

	switch op {
	case "list":
		names := make([]string, 0, len(cfg.Streams))
		for _, s := range cfg.Streams {
			names = append(names, s.Name)
		}
		if cfg.Checkpoint.Type == "file" {
			found, err := checkpoint.FileStreams(cfg.Checkpoint.Dir)
			if err != nil {
				return err
			}
			for _, f := range found {
				if !slices.Contains(names, f) {
					names = append(names, f)
				}
			}
		}
		out := make([]checkpointEntry, 0, len(names))
		for _, name := range names {
			en, err := cs.entry(ctx, cfg, name)
			if err != nil {
				return err
			}
			out = append(out, en)
		}
		return writeJSON(e.stdout, out)
	case "show":
		en, err := cs.entry(ctx, cfg, pos[0])
		if err != nil {
			return err
		}
		return writeJSON(e.stdout, en)
	}

	// set and reset: own the stream's checkpoint first.
	if err := cs.own(ctx, cfg, pos[0]); err != nil {
		return err
	}
	if op == "set" {
		if err := cs.save(ctx, pos[0], pos[1]); err != nil {
			return err
		}
	} else if err := cs.remove(ctx, cfg, pos[0]); err != nil {
		return err
	}
	en, err := cs.entry(ctx, cfg, pos[0])
	if err != nil {
		return err
	}
	return writeJSON(e.stdout, en)
}

// checkpointStore is the configured store, opened for the command.
type checkpointStore struct {
	d     *daemon             // holds the NATS connection (nats_kv)
	kv    *checkpoint.NATSKV  // nats_kv
	lock  *checkpoint.DirLock // file, for set and reset
	lease *checkpoint.Lease   // nats_kv, for set and reset
	file  *checkpoint.File    // file, for set
}

func openCheckpointStore(ctx context.Context, cfg *Config) (*checkpointStore, error) {
	if cfg.Checkpoint.Type == "kafka" {
		return nil, usagef("ingest checkpoints reads checkpoint.type file and nats_kv; a kafka checkpoint topic (%s) is read by the daemon only", cfg.Checkpoint.KafkaTopic)
	}
	cs := &checkpointStore{d: &daemon{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	if cfg.Checkpoint.Type != "nats_kv" {
		return cs, nil
	}
	if _, _, err := cs.d.openNATS(ctx); err != nil {
		cs.close()
		return nil, err
	}
	js := cs.d.natsJetStream()
	if js == nil {
		cs.close()
		return nil, usagef("checkpoint.type nats_kv needs sink.nats.jetstream true")
	}
	kv, err := checkpoint.NewNATSKV(ctx, js, cfg.Checkpoint.NATSKVBucket)
	if err != nil {
		cs.close()
		return nil, fmt.Errorf("checkpoint.nats_kv_bucket: %w", err)
	}
	cs.kv = kv
	return cs, nil
}

func (cs *checkpointStore) entry(ctx context.Context, cfg *Config, stream string) (checkpointEntry, error) {
	en := checkpointEntry{Stream: stream, Checkpoint: cfg.checkpointLocation(stream)}
	for _, s := range cfg.Streams {
		en.Configured = en.Configured || s.Name == stream
	}
	var err error
	if cs.kv != nil {
		en.Cursor, en.Exists, err = cs.kv.Load(ctx, stream)
	} else {
		en.Cursor, en.Exists, err = checkpoint.ReadFileCheckpoint(ctx, cfg.Checkpoint.Dir, stream)
	}
	if err != nil {
		return en, fmt.Errorf("stream %s: %s: %w", stream, en.Checkpoint, err)
	}
	return en, nil
}

// own takes what a daemon takes: the directory's lock or the stream's lease.
func (cs *checkpointStore) own(ctx context.Context, cfg *Config, stream string) error {
	if cs.kv != nil {
		l, err := checkpoint.AcquireLease(ctx, cs.d.natsJetStream(), cfg.Checkpoint.NATSKVBucket, []string{stream}, checkpoint.DefaultLeaseTTL)
		if err != nil {
			return fmt.Errorf("checkpoint.nats_kv_bucket: %w", err)
		}
		cs.lease = l
		return nil
	}
	l, err := checkpoint.LockDir(cfg.Checkpoint.Dir)
	if err != nil {
		return fmt.Errorf("checkpoint.dir: %w", err)
	}
	cs.lock = l
	f, err := checkpoint.NewFile(cfg.Checkpoint.Dir)
	if err != nil {
		return fmt.Errorf("checkpoint.dir: %w", err)
	}
	cs.file = f
	return nil
}

func (cs *checkpointStore) save(ctx context.Context, stream, cursor string) error {
	if cs.kv != nil {
		return cs.kv.Save(ctx, stream, cursor)
	}
	return cs.file.Save(ctx, stream, cursor)
}

func (cs *checkpointStore) remove(ctx context.Context, cfg *Config, stream string) error {
	if cs.kv != nil {
		return cs.kv.Delete(ctx, stream)
	}
	// The store may hold the file open: close it first.
	if err := cs.file.Close(); err != nil {
		return err
	}
	cs.file = nil
	return checkpoint.RemoveFileCheckpoint(cfg.Checkpoint.Dir, stream)
}

func (cs *checkpointStore) close() {
	if cs.file != nil {
		_ = cs.file.Close()
	}
	if cs.kv != nil {
		_ = cs.kv.Close()
	}
	cs.lease.Release()
	if cs.lock != nil {
		_ = cs.lock.Unlock()
	}
	cs.d.closeBackends()
}
