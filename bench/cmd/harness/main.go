// Command harness measures restless-ingest end to end and writes the results
// to BENCHMARKS.md: the event hot path (Go benchmarks), throughput into
// JetStream and Kafka against the brokers' own client libraries, latency at a
// steady rate, many streams in one process, and a peer (Benthos) on the same
// job. Every figure is the median of several runs with their range, next to
// its bound measured in the same run on the same machine.
//
//	go run ./bench/cmd/harness            # from the repository root; about 10 minutes
//	go run ./bench/cmd/harness -quick     # small counts, to check that it works
//
// Everything runs on loopback: an emulator and an embedded nats-server in
// this process, kfake clusters in this process, `ingest run`, the bound and
// Benthos as child processes. Every run is bounded in time and count, and
// the harness stops what it starts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/restless-stream/ingest/emulator"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bound" {
		if err := boundMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bound:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

// options are the harness's flags.
type options struct {
	runs  int
	quick bool
	only  string
	out   string
	n     int64
	peerN int64
	keep  bool
	prof  bool
}

func (o options) want(section string) bool {
	if o.only == "" {
		return true
	}
	for _, s := range strings.Split(o.only, ",") {
		if strings.TrimSpace(s) == section {
			return true
		}
	}
	return false
}

func run() error {
	var o options
	flag.IntVar(&o.runs, "runs", 5, "runs per figure (the median and range are reported)")
	flag.BoolVar(&o.quick, "quick", false, "small counts and short windows: checks the harness, measures nothing")
	flag.StringVar(&o.only, "only", "", "comma-separated sections to run: hotpath,e2e,latency,scale,peer (default all)")
	flag.StringVar(&o.out, "out", "BENCHMARKS.md", "the results file to write")
	flag.Int64Var(&o.n, "n", 200000, "events per end-to-end run")
	flag.Int64Var(&o.peerN, "peer-n", 100000, "events per peer run")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (configurations, logs)")
	flag.BoolVar(&o.prof, "cpuprofile", false, "write a CPU profile of every ingest run into the work directory (implies -keep)")
	flag.Parse()

	started := time.Now()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()

	root, err := repoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ingest-bench-")
	if err != nil {
		return err
	}
	if o.prof {
		o.keep = true
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "harness: work directory", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	e := &env{dir: dir, self: self, runs: o.runs, quick: o.quick, prof: o.prof, apiKey: "rs_bench"}
	rep := &report{opts: o, machine: machineInfo(root), loadBefore: loadAvg()}

	e.logf("building ingest")
	e.ingest = filepath.Join(dir, "ingest")
	if out, err := goCmd(ctx, root, "build", "-o", e.ingest, "./cmd/ingest"); err != nil {
		return fmt.Errorf("build ingest: %w\n%s", err, out)
	}
	var benthosBin string
	if o.want("peer") {
		e.logf("building the Benthos peer (the first build takes a few minutes)")
		benthosBin = filepath.Join(dir, "benthos")
		if out, err := goCmd(ctx, filepath.Join(root, "bench", "peer", "benthos"), "build", "-o", benthosBin, "."); err != nil {
			return fmt.Errorf("build the Benthos peer: %w\n%s", err, out)
		}
	}

	emu, err := emulator.New(emulator.Options{APIKeys: []string{e.apiKey}})
	if err != nil {
		return err
	}
	if err := emu.Start("127.0.0.1:0"); err != nil {
		return err
	}
	defer emu.Close()
	e.emu = emu

	var js *broker
	if o.want("e2e") || o.want("latency") || o.want("scale") {
		if js, err = startJetStream(dir); err != nil {
			return fmt.Errorf("embedded nats-server: %w", err)
		}
		defer js.close()
	}

	if o.want("hotpath") {
		e.logf("section 1: hot path")
		if rep.hotpath, err = runHotpath(ctx, e, root); err != nil {
			return err
		}
	}
	if o.want("e2e") {
		e.logf("section 2: end to end")
		n := o.n
		if o.quick {
			n = 5000
		}
		if rep.e2e, err = runE2E(ctx, e, js, n); err != nil {
			return err
		}
		if err := rep.hotpath.laneOnce(ctx, e, root); err != nil {
			return err
		}
	}
	if o.want("latency") {
		e.logf("section 3: latency")
		warm, measure := 1000, 5000
		if o.quick {
			warm, measure = 200, 800
		}
		if rep.latency, err = runLatency(ctx, e, js, warm, measure); err != nil {
			return err
		}
		if err := rep.hotpath.laneOnce(ctx, e, root); err != nil {
			return err
		}
	}
	if o.want("scale") {
		e.logf("section 4: scale")
		rep.scale = &scaleOutcome{}
		streams, window, ids := 1000, 10*time.Second, 100000
		if o.quick {
			streams, window, ids = 50, 2*time.Second, 5000
		}
		if err := runScaleStreams(ctx, e, js, streams, window, rep.scale); err != nil {
			return err
		}
		if err := runScaleDedupe(ctx, e, 10, ids, rep.scale); err != nil {
			return err
		}
		if err := runScaleBreakdown(ctx, e, root, rep.scale); err != nil {
			return err
		}
		if err := rep.hotpath.laneOnce(ctx, e, root); err != nil {
			return err
		}
	}
	if o.want("peer") {
		e.logf("section 5: peer")
		n := o.peerN
		if o.quick {
			n = 5000
		}
		cfg := filepath.Join(root, "bench", "peer", "benthos", "config.yaml")
		if rep.peer, err = runPeer(ctx, e, benthosBin, cfg, n); err != nil {
			return err
		}
		rep.peer.benthosVersion = moduleVersion(benthosBin, "github.com/redpanda-data/benthos/v4")
	}
	if err := finishHotpath(ctx, e, root, rep.hotpath); err != nil {
		return err
	}

	rep.loadAfter = loadAvg()
	rep.elapsed = time.Since(started)
	path := o.out
	if !filepath.IsAbs(path) {
		path = filepath.Join(root, path)
	}
	if err := os.WriteFile(path, []byte(rep.markdown()), 0o644); err != nil {
		return err
	}
	e.logf("wrote %s in %v", path, rep.elapsed.Round(time.Second))
	return nil
}

// goCmd runs the go command in dir.
func goCmd(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}

// repoRoot finds the module root of the working directory.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull || filepath.Base(filepath.Dir(mod)) == "benthos" {
		return "", errors.New("run the harness from the repository root: go run ./bench/cmd/harness")
	}
	return filepath.Dir(mod), nil
}

// moduleVersion reads a dependency's version from a Go binary.
func moduleVersion(bin, module string) string {
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == "dep" && f[1] == module {
			return f[2]
		}
	}
	return "?"
}
