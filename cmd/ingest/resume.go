package main

import (
	"context"
	"fmt"
	"path/filepath"
)

// checkpointLocation names where a stream's checkpoint is kept, for the log and
// for errors: the file, the bucket and key, or the memory store.
func (c *Config) checkpointLocation(stream string) string {
	switch c.Checkpoint.Type {
	case "nats_kv":
		return fmt.Sprintf("nats_kv bucket %s key %s", c.Checkpoint.NATSKVBucket, stream)
	case "kafka":
		return fmt.Sprintf("kafka topic %s key %s/<epoch>", c.Checkpoint.KafkaTopic, stream)
	case "memory":
		return "memory (not kept across restarts)"
	default:
		return "file " + filepath.Join(c.Checkpoint.Dir, stream+".checkpoint")
	}
}

// announceStart reads every stream's checkpoint once and logs where each stream
// starts: resumed from a cursor (and which checkpoint), or fresh, live or from
// since. With checkpoint.require_existing, a stream with no checkpoint is a
// configuration error naming it (exit 2): a fresh start in production means a
// gap nobody asked for.
func (d *daemon) announceStart(ctx context.Context) error {
	if d.cfg.baseDir != "" {
		d.log.Info("relative paths of the configuration file are resolved against its directory", "dir", d.cfg.baseDir)
	}
	if d.cl != nil {
		// Each stream's checkpoint is read when it is assigned, by its claim.
		return nil
	}
	var missing []FieldError
	for i, s := range d.cfg.Streams {
		where := d.cfg.checkpointLocation(s.Name)
		cursor, ok, err := d.store.Load(ctx, s.Name)
		if err != nil {
			return fmt.Errorf("stream %s: checkpoint %s: %w", s.Name, where, err)
		}
		switch {
		case ok:
			d.log.Info("stream resumes from its checkpoint", "stream", s.Name, "cursor", cursor, "checkpoint", where)
		case d.cfg.Checkpoint.RequireExisting:
			missing = append(missing, FieldError{Path: fmt.Sprintf("streams[%d]", i),
				Msg: fmt.Sprintf("stream %s has no checkpoint (%s) and checkpoint.require_existing is true; "+
					"check checkpoint.dir or the bucket, or set require_existing false once to start it", s.Name, where)})
		case s.Since != "":
			d.log.Warn("stream starts fresh: no checkpoint, reading from since", "stream", s.Name, "since", s.Since, "checkpoint", where)
		default:
			d.log.Warn("stream starts fresh: no checkpoint, reading live (earlier events are not read)", "stream", s.Name, "checkpoint", where)
		}
	}
	if len(missing) > 0 {
		return &ConfigError{Errs: missing}
	}
	return nil
}
