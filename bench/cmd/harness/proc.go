package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// proc is a child process of the harness.
type proc struct {
	cmd     *exec.Cmd
	name    string
	logPath string
	done    chan struct{}
	err     error
	exited  time.Time
	hwm     atomic.Int64 // the largest VmHWM seen, bytes
}

// procResult is what a child cost.
type procResult struct {
	CPU time.Duration // user + system, from the child's rusage
	// MaxRSS is the peak resident set in bytes: the last VmHWM read from
	// /proc before the child exited (read every 20ms). Not ru_maxrss: Linux
	// carries the parent's resident set into it through fork and exec, so it
	// would count the harness.
	MaxRSS int64
	Exit   time.Time
}

// startProc starts bin with args, its standard error (and output, unless
// stdout is given) going to a log file in dir. The child is killed when
// timeout passes or ctx ends: SIGTERM first, SIGKILL 5s later.
func startProc(ctx context.Context, dir, name string, timeout time.Duration, stdout io.Writer, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	cmd := exec.CommandContext(cctx, bin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Stderr = logf
	cmd.Stdout = logf
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if err := cmd.Start(); err != nil {
		cancel()
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, name: name, logPath: logPath, done: make(chan struct{})}
	go p.sampleHWM()
	go func() {
		p.err = cmd.Wait()
		p.exited = time.Now()
		cancel()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// sampleHWM reads the child's VmHWM every 20ms until it exits.
func (p *proc) sampleHWM() {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if st, err := procStatus(p.pid()); err == nil && st["VmHWM"] > p.hwm.Load() {
			p.hwm.Store(st["VmHWM"])
		}
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
	}
}

// pid returns the child's process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop asks the child to end (SIGTERM) and waits for it.
func (p *proc) stop() (procResult, error) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	return p.wait()
}

// wait waits for the child to exit and returns its resource usage.
func (p *proc) wait() (procResult, error) {
	<-p.done
	var r procResult
	r.Exit = p.exited
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	r.MaxRSS = p.hwm.Load()
	if p.err != nil {
		return r, fmt.Errorf("%s: %w (log: %s)", p.name, p.err, p.tail())
	}
	return r, nil
}

// tail returns the last lines of the child's log.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-5):], " | ")
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture Go supports.
const clockTicks = 100

// procCPU returns the CPU time (user + system) a live process used so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which ends with the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// procStatus returns the fields of /proc/PID/status in bytes (VmRSS, VmHWM, ...).
func procStatus(pid int) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.HasSuffix(v, "kB") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64)
		if err == nil {
			out[k] = n * 1024
		}
	}
	return out, sc.Err()
}

// scrapeMetric reads one unlabelled sample from a Prometheus text endpoint.
func scrapeMetric(url, name string) (float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("metric %s not found at %s", name, url)
}

// freeAddr returns a free loopback address.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitHTTP waits until url answers 200, for at most d.
func waitHTTP(url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	c := http.Client{Timeout: time.Second}
	for {
		res, err := c.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer 200 within %v", url, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
