package validate

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Paths from this package's directory (deploy/validate).
var (
	repoRoot   = mustAbs(filepath.Join("..", ".."))
	chartDir   = filepath.Join(repoRoot, "deploy", "helm", "restless-ingest")
	alertsFile = filepath.Join(repoRoot, "deploy", "prometheus", "alerts.yaml")
	alertsTest = filepath.Join(repoRoot, "deploy", "prometheus", "alerts_test.yaml")
	dashboard  = filepath.Join(repoRoot, "deploy", "grafana", "restless-ingest.json")
)

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return a
}

var tmpDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if tmpDir != "" {
		os.RemoveAll(tmpDir)
	}
	os.Exit(code)
}

// built runs build once and remembers its result.
type built struct {
	once sync.Once
	path string
	err  error
}

func (b *built) get(t *testing.T, build func() (string, error)) string {
	t.Helper()
	b.once.Do(func() { b.path, b.err = build() })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

var helmBuilt, ingestBuilt built

// helmBinary is Helm built from this module's `tool helm.sh/helm/v4/cmd/helm`
// (the go command caches the binary).
func helmBinary(t *testing.T) string {
	return helmBuilt.get(t, func() (string, error) {
		out, err := exec.Command("go", "tool", "-n", "helm").Output()
		if err != nil {
			return "", fmt.Errorf("building helm (go tool -n helm): %v%s", err, stderrOf(err))
		}
		return strings.TrimSpace(string(out)), nil
	})
}

// ingestBinary is the daemon, built from the repository's own module.
func ingestBinary(t *testing.T) string {
	return ingestBuilt.get(t, func() (string, error) {
		var err error
		if tmpDir == "" {
			if tmpDir, err = os.MkdirTemp("", "deploy-validate-"); err != nil {
				return "", err
			}
		}
		bin := filepath.Join(tmpDir, "ingest")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/ingest")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build ./cmd/ingest: %v\n%s", err, out)
		}
		return bin, nil
	})
}

// promtool is Prometheus's promtool from PATH (Debian's prometheus package).
// Missing, it skips the test, except under CI=true where it fails it.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (apt-get install prometheus)")
		}
		t.Skip("promtool is not installed (apt-get install prometheus)")
	}
	return p
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		return "\n" + string(ee.Stderr)
	}
	return ""
}

// run runs a command in dir and returns its stdout, stderr and error.
func run(dir, name string, env []string, args ...string) (string, string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// cleanEnv is the test's environment without any INGEST_ or RESTLESS_
// variable, which the daemon would read.
func cleanEnv(extra map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INGEST_") && !strings.HasPrefix(kv, "RESTLESS_") {
			env = append(env, kv)
		}
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// lockedBuffer collects a process's output for a test to wait on.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// process is a started command whose output is collected; it is killed when
// the test ends.
type process struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

func start(t *testing.T, env []string, name string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(name, args...), out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s %v:\n%s", name, args, p.out)
		}
	})
	return p
}

// waitFor waits until re matches the output and returns its submatches.
func (p *process) waitFor(t *testing.T, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			return m
		}
		select {
		case <-p.done:
			t.Fatalf("%v exited before printing %q", p.cmd.Args, re)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v did not print %q within %v", p.cmd.Args, re, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
