package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchDebounce gathers the several events of one save (an editor writes a
// temporary file, renames it over the old one) into one reload.
const watchDebounce = 250 * time.Millisecond

// reloadSignals sends on the returned channel for every SIGHUP, until
// release is called.
func reloadSignals() (<-chan struct{}, func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	out := make(chan struct{}, 1)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case <-ch:
				select {
				case out <- struct{}{}:
				default:
				}
			case <-done:
				return
			}
		}
	}()
	return out, func() {
		signal.Stop(ch)
		close(done)
		<-exited
	}
}

// watchConfig sends on the returned channel when file changes, until ctx
// ends. It watches the file's directory, not the file: an editor (or a
// Kubernetes ConfigMap) that replaces the file by a rename leaves a watch
// on the file itself pointing at the old, deleted one.
func watchConfig(ctx context.Context, file string, log *slog.Logger) (<-chan struct{}, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		_ = w.Close()
		return nil, err
	}
	dir, base := filepath.Dir(abs), filepath.Base(abs)
	if err := w.Add(dir); err != nil {
		_ = w.Close()
		return nil, err
	}
	out := make(chan struct{}, 1)
	go func() {
		defer w.Close()
		var fire <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				name := filepath.Base(ev.Name)
				if name == base || name == "..data" {
					fire = time.After(watchDebounce)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Warn("watching the configuration file", "file", file, "err", err)
			case <-fire:
				fire = nil
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out, nil
}

// merge sends on the returned channel whenever any of chs does, until ctx
// ends.
func merge(ctx context.Context, chs ...<-chan struct{}) <-chan struct{} {
	out := make(chan struct{}, 1)
	for _, ch := range chs {
		if ch == nil {
			continue
		}
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-ch:
					select {
					case out <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	return out
}
