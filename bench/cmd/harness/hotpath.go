package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// benchSet gathers the runs of each benchmark.
type benchSet map[string]map[string]sample // name → unit → values

func (s benchSet) get(name, unit string) sample { return s[name][unit] }

var benchName = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?$`)

// parseBench reads `go test -bench` output.
func parseBench(out []byte, into benchSet) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		m := benchName.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		if into[m[1]] == nil {
			into[m[1]] = map[string]sample{}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			into[m[1]][f[i+1]] = append(into[m[1]][f[i+1]], v)
		}
	}
}

// hotpathOutcome is the hot-path section.
type hotpathOutcome struct {
	set      benchSet
	commands []string
	profile  string // pprof top of BenchmarkLane, when the goal is missed

	// The runs of BenchmarkLane are spread over the harness's run (see
	// laneOnce): laneArgs runs one, laneLeft are still to come.
	laneArgs []string
	laneLeft int
}

// goTest runs `go test` in the repository root and returns its output.
func goTest(ctx context.Context, root string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", append([]string{"test"}, args...)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("go test %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

// runHotpath runs the Go benchmarks of the event hot path on one core.
func runHotpath(ctx context.Context, e *env, root string) (*hotpathOutcome, error) {
	count := strconv.Itoa(e.runs)
	out := &hotpathOutcome{set: benchSet{}, laneLeft: e.runs}
	out.laneArgs = []string{"-run", "^$", "-bench", "^BenchmarkLane$", "-benchmem", "-cpu", "1", "-count", "1", "./bench/hotpath"}
	if e.quick {
		out.laneArgs = append(cloneArgs(out.laneArgs), "-benchtime", "20000x")
	}
	out.commands = append(out.commands, fmt.Sprintf("go test %s   # %d times, spread over the run", strings.Join(out.laneArgs, " "), e.runs))
	if err := out.laneOnce(ctx, e, root); err != nil {
		return nil, err
	}
	jobs := [][]string{
		{"-run", "^$", "-bench", "^(BenchmarkDecodeEvent|BenchmarkVerify)$", "-benchmem", "-cpu", "1", "-count", count, "-benchtime", "200ms", "./client"},
		{"-run", "^$", "-bench", "^BenchmarkWindow100k$", "-benchmem", "-cpu", "1", "-count", count, "-benchtime", "200ms", "./pipeline"},
	}
	for _, args := range jobs {
		if e.quick {
			args = append(cloneArgs(args), "-benchtime", "20000x")
		}
		e.logf("go test %s", strings.Join(args, " "))
		res, err := goTest(ctx, root, args...)
		if err != nil {
			return nil, err
		}
		out.commands = append(out.commands, "go test "+strings.Join(args, " "))
		parseBench(res, out.set)
	}
	return out, nil
}

// laneOnce runs BenchmarkLane once, if runs are left. The harness calls it
// after each of its sections: the speed of a shared machine drifts over
// tens of seconds, and runs back to back would all fall in one phase of it.
func (o *hotpathOutcome) laneOnce(ctx context.Context, e *env, root string) error {
	if o == nil || o.laneLeft == 0 {
		return nil
	}
	o.laneLeft--
	e.logf("go test %s", strings.Join(o.laneArgs, " "))
	res, err := goTest(ctx, root, o.laneArgs...)
	if err != nil {
		return err
	}
	parseBench(res, o.set)
	return nil
}

// finishHotpath runs the lane runs still to come and, when the goal is
// missed, profiles the lane.
func finishHotpath(ctx context.Context, e *env, root string, out *hotpathOutcome) error {
	if out == nil {
		return nil
	}
	for out.laneLeft > 0 {
		if err := out.laneOnce(ctx, e, root); err != nil {
			return err
		}
	}
	if out.laneRate().median() < goalHotpathRate {
		prof := filepath.Join(e.dir, "lane.prof")
		bin := filepath.Join(e.dir, "hotpath.test")
		if _, err := goTest(ctx, root, "-run", "^$", "-bench", "^BenchmarkLane$", "-cpu", "1", "-count", "1",
			"-benchtime", "500000x", "-cpuprofile", prof, "-o", bin, "./bench/hotpath"); err != nil {
			return err
		}
		top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount", "20", bin, prof).Output()
		if err != nil {
			return fmt.Errorf("pprof: %w", err)
		}
		out.profile = trimPprof(string(top))
		_ = os.Remove(bin)
	}
	return nil
}

func cloneArgs(s []string) []string { return append([]string(nil), s...) }

// trimPprof keeps the table of a pprof -top output (no file or build lines).
func trimPprof(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.TrimSpace(strings.Join(keep, "\n"))
}

// laneRate is events per wall second of BenchmarkLane.
func (o *hotpathOutcome) laneRate() sample { return o.set.get("BenchmarkLane", "events/s") }

// laneCPURate is events per CPU second of BenchmarkLane.
func (o *hotpathOutcome) laneCPURate() sample {
	var s sample
	for _, v := range o.set.get("BenchmarkLane", "cpu-ns/event") {
		s = append(s, 1e9/v)
	}
	return s
}
