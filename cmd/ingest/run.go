package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

// cmdRun is `ingest run -c FILE`: the daemon.
func cmdRun(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("run", e.stderr)
	var cf configFlags
	cf.register(fs)
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of the whole run to this file (for go tool pprof)")
	watch := fs.Bool("watch-config", false, "reload the configuration file when it changes (as on SIGHUP)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return usagef("--cpuprofile: %v", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return usagef("--cpuprofile: %v", err)
		}
		defer pprof.StopCPUProfile()
	}
	log, level := newLevelLogger(e.stderr, cfg.Log)
	warnIgnoredEnv(log, cfg)
	stop, force, release := signals()
	defer release()
	hup, releaseHUP := reloadSignals()
	defer releaseHUP()
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	var changed <-chan struct{}
	if *watch {
		file := cf.file
		if file == "" {
			file = os.Getenv(envConfigFile)
		}
		if changed, err = watchConfig(watchCtx, file, log); err != nil {
			return usagef("--watch-config: %v", err)
		}
	}
	// A signal during the start (the broker may be unreachable for long)
	// stops it.
	startCtx, cancelStart := context.WithCancel(ctx)
	defer cancelStart()
	started := make(chan struct{})
	go func() {
		select {
		case <-stop:
			cancelStart()
		case <-started:
		}
	}()
	d, err := newDaemon(startCtx, cfg, log, func(d *daemon) {
		d.reload = merge(watchCtx, hup, changed)
		d.loadConfig = cf.load
		d.level = level
	})
	close(started)
	if err != nil {
		if startCtx.Err() != nil && ctx.Err() == nil { // stopped by a signal
			log.Info("stopped before the start completed")
			return nil
		}
		return err
	}
	return d.run(ctx, stop, force)
}

// signals returns a channel closed on the first SIGINT or SIGTERM and one closed
// on the second; release stops listening.
func signals() (stop, force <-chan struct{}, release func()) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	s, f := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		n := 0
		for {
			select {
			case <-ch:
				n++
				switch n {
				case 1:
					close(s)
				case 2:
					close(f)
				}
			case <-done:
				return
			}
		}
	}()
	return s, f, func() {
		signal.Stop(ch)
		close(done)
		<-exited
	}
}
