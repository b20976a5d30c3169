package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// topEvery is how often top asks the daemon and redraws.
const topEvery = time.Second

// topTimeout bounds one request of top, so that a daemon that hangs shows
// as unreachable instead of freezing the view.
const topTimeout = 3 * time.Second

// cmdTop is `ingest top [--addr A]`: a live view of GET /v1/streams, redrawn
// every second, on a terminal through Bubble Tea; elsewhere (a pipe, a file)
// one plain block per second.
func cmdTop(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("top", e.stderr)
	addr := fs.String("addr", defaultStatusAddr, "the daemon's http.addr (host:port or http:// URL)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := newStatusClient(*addr, topTimeout)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if f, ok := e.stdout.(*os.File); ok && isTerminal(f) {
		return runTopTUI(ctx, c, f)
	}
	return runTopPlain(ctx, c, e.stdout)
}

// topPoll is one answer of the daemon (or why there was none).
type topPoll struct {
	at      time.Time
	streams []StreamStatus
	err     error
}

// topView is what top shows: the last answer, each stream's rate from the
// difference of events_published between the two last answers, and the
// error while the daemon cannot be asked.
type topView struct {
	base   string
	last   []StreamStatus
	lastAt time.Time
	prev   map[string]int64   // events_published at lastAt
	rates  map[string]float64 // events/s; NaN when unknown
	err    error              // the last poll's error, nil after a good one
	since  time.Time          // when err started
}

func newTopView(base string) *topView {
	return &topView{base: base, prev: map[string]int64{}, rates: map[string]float64{}}
}

// apply takes one poll. A failed poll keeps the last answer on screen, so
// the rates after the daemon comes back span the gap; a counter that went
// down (the daemon restarted) has no rate until the next poll.
func (v *topView) apply(p topPoll) {
	if p.err != nil {
		if v.err == nil {
			v.since = p.at
		}
		v.err = p.err
		return
	}
	v.err = nil
	dt := p.at.Sub(v.lastAt).Seconds()
	rates := make(map[string]float64, len(p.streams))
	prev := make(map[string]int64, len(p.streams))
	for _, s := range p.streams {
		r := math.NaN()
		if before, ok := v.prev[s.Name]; ok && !v.lastAt.IsZero() && dt > 0 && s.EventsPublished >= before {
			r = float64(s.EventsPublished-before) / dt
		}
		rates[s.Name] = r
		prev[s.Name] = s.EventsPublished
	}
	v.last, v.lastAt, v.prev, v.rates = p.streams, p.at, prev, rates
}

// topColumns are the columns of top's rows.
var topColumns = []string{"NAME", "STATE", "EV/S", "LAG", "LAST ERROR"}

// table returns the header and one row per stream, aligned.
func (v *topView) table() []string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(topColumns, "\t"))
	for _, s := range v.last {
		rate := "-"
		if r, ok := v.rates[s.Name]; ok && !math.IsNaN(r) {
			rate = strconv.FormatFloat(r, 'f', 1, 64)
		}
		fmt.Fprintln(tw, strings.Join([]string{cell(s.Name), cell(s.State), rate, formatLag(s.LagSeconds), cell(deref(s.LastError))}, "\t"))
	}
	_ = tw.Flush()
	return strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
}

// headline says where top looks and how it stands.
func (v *topView) headline(now time.Time) string {
	h := fmt.Sprintf("ingest top  %s  %s", v.base, now.Format(time.TimeOnly))
	if !v.lastAt.IsZero() {
		h += "  " + plural(len(v.last), "stream")
	}
	return h
}

// problem says why the daemon's answer is missing, or "" when it is not.
func (v *topView) problem() string {
	if v.err == nil {
		if v.lastAt.IsZero() {
			return "asking the daemon…"
		}
		return ""
	}
	var msg string
	var ue *unreachableError
	if errors.As(v.err, &ue) {
		msg = fmt.Sprintf("daemon unreachable since %s: %v", v.since.Format(time.TimeOnly), ue.err)
	} else {
		msg = fmt.Sprintf("since %s: %v", v.since.Format(time.TimeOnly), v.err)
	}
	msg = cell(redactText(msg)) + "; retrying every second"
	if !v.lastAt.IsZero() {
		msg += fmt.Sprintf(" (rows as of %s)", v.lastAt.Format(time.TimeOnly))
	}
	return msg
}

// screen renders the whole view within width × height (0 = unbounded).
func (v *topView) screen(now time.Time, width, height int) string {
	lines := []string{v.headline(now) + "  (q quits)", v.problem()}
	if !v.lastAt.IsZero() {
		rows := v.table()
		if height > 0 && len(lines)+len(rows) > height {
			keep := max(height-len(lines)-1, 1)
			more := len(rows) - keep
			rows = append(rows[:keep:keep], fmt.Sprintf("… %d more", more))
		}
		lines = append(lines, rows...)
	}
	for i, l := range lines {
		lines[i] = clip(l, width)
	}
	return strings.Join(lines, "\n")
}

// clip cuts s to width runes (0 = no limit).
func clip(s string, width int) string {
	if width <= 0 {
		return s
	}
	n := 0
	for i := range s {
		if n == width {
			return s[:i]
		}
		n++
	}
	return s
}

// runTopPlain prints one block per second until ctx ends: a headline, then
// the table, or a line saying why there is none.
func runTopPlain(ctx context.Context, c *statusClient, w io.Writer) error {
	v := newTopView(c.base)
	t := time.NewTicker(topEvery)
	defer t.Stop()
	for {
		streams, _, err := c.streams(ctx)
		if ctx.Err() != nil {
			return nil
		}
		now := time.Now()
		v.apply(topPoll{at: now, streams: streams, err: err})
		block := []string{v.headline(now)}
		if p := v.problem(); p != "" {
			block = append(block, p)
		} else {
			block = append(block, v.table()...)
		}
		if _, err := fmt.Fprintln(w, strings.Join(block, "\n")+"\n"); err != nil {
			return nil // the reader went away (a closed pipe)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// topModel is the Bubble Tea model of top.
type topModel struct {
	ctx           context.Context
	c             *statusClient
	view          *topView
	now           func() time.Time
	width, height int
}

// topTick asks for the next poll.
type topTick struct{}

func (m *topModel) Init() tea.Cmd { return m.poll }

// poll asks the daemon once; it runs outside the update loop.
func (m *topModel) poll() tea.Msg {
	streams, _, err := m.c.streams(m.ctx)
	return topPoll{at: m.now(), streams: streams, err: err}
}

func (m *topModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch msg.String() {
		case "q", "Q", "ctrl+c":
			return m, tea.Quit
		}
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case topPoll:
		m.view.apply(msg)
		return m, tea.Tick(topEvery, func(time.Time) tea.Msg { return topTick{} })
	case topTick:
		return m, m.poll
	}
	return m, nil
}

func (m *topModel) View() string { return m.view.screen(m.now(), m.width, m.height) }

// runTopTUI runs the live view on the terminal out until q, Ctrl-C or a signal.
func runTopTUI(ctx context.Context, c *statusClient, out *os.File) error {
	m := &topModel{ctx: ctx, c: c, view: newTopView(c.base), now: time.Now}
	_, err := tea.NewProgram(m, tea.WithContext(ctx), tea.WithOutput(out), tea.WithAltScreen()).Run()
	switch {
	case err == nil, errors.Is(err, tea.ErrInterrupted):
		return nil
	case errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil:
		return nil // SIGTERM or SIGINT from outside
	}
	return fmt.Errorf("top: %w", err)
}

// plural is "1 stream", "2 streams".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
