package checkpoint

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const lockEnv = "CHECKPOINT_LOCK_TEST_DIR"

// TestLockHolder is the subprocess of TestLockDirBetweenProcesses: it locks the
// directory, says so, and waits to be killed.
func TestLockHolder(t *testing.T) {
	dir := os.Getenv(lockEnv)
	if dir == "" {
		t.Skip("subprocess of TestLockDirBetweenProcesses")
	}
	if _, err := LockDir(dir); err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	fmt.Println("locked")
	time.Sleep(time.Hour)
}

// TestLockDirBetweenProcesses: while one process holds a checkpoint directory,
// another cannot lock it and learns the holder's pid and host; once the holder
// is killed (no chance to clean up), the directory can be locked again.
func TestLockDirBetweenProcesses(t *testing.T) {
	if os.Getenv(lockEnv) != "" {
		t.Skip("in the subprocess")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHolder$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("holder said %q, %v", line, err)
	}

	_, err = LockDir(dir)
	var held *HeldError
	if !errors.As(err, &held) || !errors.Is(err, ErrHeld) {
		t.Fatalf("LockDir while held = %v, want a *HeldError", err)
	}
	host, _ := os.Hostname()
	if want := fmt.Sprintf("pid %d on host %s", cmd.Process.Pid, host); !strings.Contains(held.Holder, want) {
		t.Errorf("holder = %q, want it to name %q", held.Holder, want)
	}

	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	l, err := LockDir(dir)
	if err != nil {
		t.Fatalf("LockDir after the holder died: %v", err)
	}
	// In one process too, a second lock of the directory fails until Unlock.
	if _, err := LockDir(dir); !errors.Is(err, ErrHeld) {
		t.Errorf("second LockDir in one process = %v, want ErrHeld", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := LockDir(dir)
	if err != nil {
		t.Fatalf("LockDir after Unlock: %v", err)
	}
	l2.Unlock()
}

func TestSanitizeHolder(t *testing.T) {
	if got := sanitizeHolder("pid 1\x1b[31m\nx"); got != "pid 1 [31m x" {
		t.Errorf("sanitizeHolder = %q", got)
	}
	if got := sanitizeHolder(strings.Repeat("a", 2000)); len(got) != maxLockHolderLen {
		t.Errorf("len = %d", len(got))
	}
}
