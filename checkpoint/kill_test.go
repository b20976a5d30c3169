package checkpoint

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

const killEnv = "CHECKPOINT_KILL_TEST_DIR"

var killStreams = []string{"alpha", "beta", "gamma"}

// killCursor gives cursors of varying length so that a torn write would show.
func killCursor(i int) string {
	return strconv.Itoa(i) + ":" + strings.Repeat("c", i%97)
}

// TestKillWriter is the subprocess of TestFileSurvivesKill: it saves
// checkpoints in a loop, printing each saved index, until it is killed.
func TestKillWriter(t *testing.T) {
	dir := os.Getenv(killEnv)
	if dir == "" {
		t.Skip("subprocess of TestFileSurvivesKill")
	}
	f, err := NewFile(dir)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 1; ; i++ {
		for _, s := range killStreams {
			if err := f.Save(context.Background(), s, killCursor(i)); err != nil {
				fmt.Fprintln(out, "error", err)
				out.Flush()
				os.Exit(3)
			}
		}
		fmt.Fprintln(out, "saved", i)
		out.Flush()
	}
}

// TestFileSurvivesKill kills a process in the middle of saving checkpoints,
// at random moments, and checks that every file then loads a valid cursor no
// older than the last Save that returned.
func TestFileSurvivesKill(t *testing.T) {
	if os.Getenv(killEnv) != "" {
		t.Skip("in the subprocess")
	}
	dir := t.TempDir()
	for round := range 5 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillWriter$", "-test.count=1")
		cmd.Env = append(os.Environ(), killEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		last := 0
		// Let it run for a random number of rounds, then kill it without warning.
		target := 20 + rand.IntN(200)
		for sc.Scan() {
			line := sc.Text()
			if n, ok := strings.CutPrefix(line, "saved "); ok {
				last, _ = strconv.Atoi(n)
				if last >= target {
					break
				}
				continue
			}
			if strings.HasPrefix(line, "error") {
				t.Fatalf("writer: %s", line)
			}
		}
		// Kill while it is in the middle of more saves; a short random pause
		// moves the moment around inside the write.
		time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if last == 0 {
			t.Fatal("writer never saved")
		}

		f, err := NewFile(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range killStreams {
			cur, ok, err := f.Load(t.Context(), s)
			if err != nil || !ok {
				t.Fatalf("round %d: stream %s: Load = %q, %v, %v", round, s, cur, ok, err)
			}
			idx, _, _ := strings.Cut(cur, ":")
			i, err := strconv.Atoi(idx)
			if err != nil || cur != killCursor(i) {
				t.Fatalf("round %d: stream %s: invalid cursor %q", round, s, cur)
			}
			if i < last {
				t.Fatalf("round %d: stream %s: cursor %d is older than the last acknowledged save %d", round, s, i, last)
			}
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".tmp") {
				t.Errorf("round %d: NewFile left %s", round, e.Name())
			}
		}
	}
}
