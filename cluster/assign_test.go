package cluster

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

func streamNames(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("s-%03d", i)
	}
	return s
}

func same(ids []string, streams []string) []Member {
	ms := make([]Member, len(ids))
	for i, id := range ids {
		ms[i] = Member{ID: id, Streams: streams}
	}
	return ms
}

func counts(a map[string]string) map[string]int {
	c := map[string]int{}
	for _, m := range a {
		c[m]++
	}
	return c
}

func moved(before, after map[string]string) int {
	n := 0
	for s, m := range after {
		if before[s] != m {
			n++
		}
	}
	return n
}

// minimalMoves is the fewest streams that must change owner to reach a
// balanced assignment from owners, when every member runs every stream: the
// ⌈S/R⌉ slots go to the members that hold the most already.
func minimalMoves(ids []string, streams []string, owners map[string]string) int {
	S, R := len(streams), len(ids)
	if R == 0 {
		return 0
	}
	valid := map[string]bool{}
	for _, id := range ids {
		valid[id] = true
	}
	inSet := map[string]bool{}
	for _, s := range streams {
		inSet[s] = true
	}
	c := map[string]int{}
	for s, o := range owners {
		if valid[o] && inSet[s] {
			c[o]++
		}
	}
	cs := make([]int, 0, R)
	for _, id := range ids {
		cs = append(cs, c[id])
	}
	slices.Sort(cs)
	slices.Reverse(cs)
	kept := 0
	for i, ci := range cs {
		f := S / R
		if i < S%R {
			f++
		}
		kept += min(ci, f)
	}
	return S - kept
}

func checkBalanced(t *testing.T, ids []string, streams []string, a map[string]string) {
	t.Helper()
	if len(a) != len(streams) {
		t.Fatalf("%d streams assigned, want %d", len(a), len(streams))
	}
	c := counts(a)
	lo, hi := len(streams)/len(ids), (len(streams)+len(ids)-1)/len(ids)
	for _, id := range ids {
		if c[id] < lo || c[id] > hi {
			t.Fatalf("member %s owns %d streams, want %d..%d (counts %v)", id, c[id], lo, hi, c)
		}
	}
}

func TestAssignScenarios(t *testing.T) {
	s30 := streamNames(30)
	fresh := Assign(same([]string{"a", "b", "c"}, s30), nil)
	checkBalanced(t, []string{"a", "b", "c"}, s30, fresh)

	t.Run("a member leaves: its streams split, nothing else moves", func(t *testing.T) {
		got := Assign(same([]string{"a", "b"}, s30), fresh)
		checkBalanced(t, []string{"a", "b"}, s30, got)
		for s, m := range fresh {
			if m != "c" && got[s] != m {
				t.Errorf("stream %s moved from %s to %s though %s stayed", s, m, got[s], m)
			}
		}
		if n := moved(fresh, got); n != 10 {
			t.Errorf("%d streams moved, want the 10 of c", n)
		}
	})
	t.Run("a member joins 15/15: takes 10, five from each", func(t *testing.T) {
		two := Assign(same([]string{"a", "b"}, s30), nil)
		got := Assign(same([]string{"a", "b", "c"}, s30), two)
		checkBalanced(t, []string{"a", "b", "c"}, s30, got)
		if n := moved(two, got); n != 10 {
			t.Errorf("%d streams moved, want 10", n)
		}
		from := counts(map[string]string{})
		for s, m := range got {
			if two[s] != m {
				from[two[s]]++
			}
		}
		if from["a"] != 5 || from["b"] != 5 {
			t.Errorf("moved from %v, want five from each", from)
		}
	})
	t.Run("stable", func(t *testing.T) {
		if got := Assign(same([]string{"a", "b", "c"}, s30), fresh); moved(fresh, got) != 0 {
			t.Error("a balanced assignment changed")
		}
	})
	t.Run("31 streams", func(t *testing.T) {
		s31 := streamNames(31)
		got := Assign(same([]string{"a", "b", "c"}, s31), fresh)
		checkBalanced(t, []string{"a", "b", "c"}, s31, got)
		if n := moved(fresh, got); n != 1 {
			t.Errorf("adding a stream moved %d, want only the new one", n)
		}
	})
	t.Run("removed stream", func(t *testing.T) {
		got := Assign(same([]string{"a", "b", "c"}, s30[1:]), fresh)
		if _, ok := got[s30[0]]; ok {
			t.Error("a stream no member runs was assigned")
		}
	})
	t.Run("owners that are not members do not count", func(t *testing.T) {
		owners := map[string]string{"s-000": "ghost", "s-001": "a"}
		got := Assign(same([]string{"a", "b"}, s30[:4]), owners)
		if got["s-001"] != "a" {
			t.Errorf("s-001 went to %s, want it kept by a", got["s-001"])
		}
		checkBalanced(t, []string{"a", "b"}, s30[:4], got)
	})
	t.Run("no members", func(t *testing.T) {
		if got := Assign(nil, fresh); len(got) != 0 {
			t.Errorf("got %v", got)
		}
	})
	t.Run("no streams", func(t *testing.T) {
		if got := Assign(same([]string{"a"}, nil), nil); len(got) != 0 {
			t.Errorf("got %v", got)
		}
	})
	t.Run("eligibility", func(t *testing.T) {
		ms := []Member{
			{ID: "a", Streams: []string{"x", "y", "z", "w"}},
			{ID: "b", Streams: []string{"x"}},
			{ID: "c", Streams: []string{"q"}},
		}
		got := Assign(ms, map[string]string{"q": "a", "x": "a", "y": "a", "z": "a", "w": "a"})
		want := map[string]string{"q": "c", "x": "b", "y": "a", "z": "a", "w": "a"}
		if !maps.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
}

// TestAssignProperties checks balance, minimal movement, stickiness,
// determinism and idempotence on random clusters.
func TestAssignProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 2000 {
		R := 1 + r.IntN(8)
		S := r.IntN(120)
		ids := make([]string, R)
		for i := range ids {
			ids[i] = fmt.Sprintf("m%d", i)
		}
		streams := streamNames(S)
		owners := map[string]string{}
		for _, s := range streams {
			switch x := r.IntN(10); {
			case x < 6:
				owners[s] = ids[r.IntN(R)]
			case x < 7:
				owners[s] = "gone"
			}
		}
		got := Assign(same(ids, streams), owners)
		checkBalanced(t, ids, streams, got)
		if n, want := moved(owners, got), minimalMoves(ids, streams, owners); n != want {
			t.Fatalf("iteration %d: %d streams changed owner, minimum %d", iter, n, want)
		}
		// Order of the inputs does not matter.
		shuffled := same(ids, slices.Clone(streams))
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for i := range shuffled {
			st := slices.Clone(shuffled[i].Streams)
			r.Shuffle(len(st), func(a, b int) { st[a], st[b] = st[b], st[a] })
			shuffled[i].Streams = st
		}
		if again := Assign(shuffled, owners); !maps.Equal(again, got) {
			t.Fatalf("iteration %d: the order of the inputs changed the assignment", iter)
		}
		if fix := Assign(same(ids, streams), got); !maps.Equal(fix, got) {
			t.Fatalf("iteration %d: assigning the result again moved streams", iter)
		}
	}
}

// TestAssignEligibilityProperties: with members listing different streams,
// every stream goes to a member that lists it, and the result is a fixpoint.
func TestAssignEligibilityProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for iter := range 1000 {
		R := 1 + r.IntN(6)
		all := streamNames(r.IntN(60))
		ms := make([]Member, R)
		for i := range ms {
			ms[i].ID = fmt.Sprintf("m%d", i)
			for _, s := range all {
				if r.IntN(4) > 0 {
					ms[i].Streams = append(ms[i].Streams, s)
				}
			}
		}
		owners := map[string]string{}
		for _, s := range all {
			if r.IntN(2) == 0 {
				owners[s] = ms[r.IntN(R)].ID
			}
		}
		got := Assign(ms, owners)
		lists := map[string]map[string]bool{}
		listed := map[string]bool{}
		for _, m := range ms {
			lists[m.ID] = map[string]bool{}
			for _, s := range m.Streams {
				lists[m.ID][s] = true
				listed[s] = true
			}
		}
		if len(got) != len(listed) {
			t.Fatalf("iteration %d: %d streams assigned, %d listed", iter, len(got), len(listed))
		}
		for s, m := range got {
			if !lists[m][s] {
				t.Fatalf("iteration %d: %s assigned to %s, which does not list it", iter, s, m)
			}
		}
		if fix := Assign(ms, got); !maps.Equal(fix, got) {
			t.Fatalf("iteration %d: not a fixpoint", iter)
		}
	}
}

func BenchmarkAssign(b *testing.B) {
	for _, c := range []struct{ members, streams int }{{3, 1000}, {20, 10000}} {
		b.Run(fmt.Sprintf("%dx%d", c.members, c.streams), func(b *testing.B) {
			ids := make([]string, c.members)
			for i := range ids {
				ids[i] = fmt.Sprintf("member-%d", i)
			}
			streams := streamNames(c.streams)
			// The costly case: one member joins a settled cluster.
			settled := Assign(same(ids[1:], streams), nil)
			ms := same(ids, streams)
			b.ResetTimer()
			for range b.N {
				Assign(ms, settled)
			}
		})
	}
}

func BenchmarkAssignStable(b *testing.B) {
	ids := []string{"member-0", "member-1", "member-2"}
	streams := streamNames(1000)
	ms := same(ids, streams)
	settled := Assign(ms, nil)
	b.ResetTimer()
	for range b.N {
		Assign(ms, settled)
	}
}
