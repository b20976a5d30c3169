package cluster

import (
	"cmp"
	"hash/fnv"
	"maps"
	"slices"
)

// Member is one member as [Assign] sees it.
type Member struct {
	// ID identifies the member; unique.
	ID string
	// Streams are the streams the member can run. A stream is only ever
	// assigned to a member that lists it.
	Streams []string
}

// Assign returns the target owner of every stream that at least one member
// can run, given the current owners (stream → member id; owners that are not
// among members, or that cannot run the stream, do not count).
//
// The result is balanced and sticky:
//   - when every member lists the same S streams, each of the R members ends
//     with ⌊S/R⌋ or ⌈S/R⌉ of them;
//   - a stream keeps its current owner unless balance needs it elsewhere;
//     the streams that move are only those needed to bring every member
//     within one of the others (a member joining 15/15 gets 10, taken five
//     from each; a member leaving 10/10/10 gives five to each of the others);
//   - the result depends only on the inputs, not on their order, so every
//     member that sees the same cluster computes the same assignment;
//   - Assign(members, Assign(members, owners)) changes nothing.
//
// When members list different streams, a stream goes only to members that
// list it and the result is as even as single moves can make it.
func Assign(members []Member, owners map[string]string) map[string]string {
	// Members by id, sorted; a member listed twice runs the union.
	ids := make([]string, 0, len(members))
	lists := make(map[string][][]string, len(members))
	for _, m := range members {
		if _, ok := lists[m.ID]; !ok {
			ids = append(ids, m.ID)
		}
		lists[m.ID] = append(lists[m.ID], m.Streams)
	}
	slices.Sort(ids)
	memberIdx := make(map[string]int, len(ids))
	for i, id := range ids {
		memberIdx[id] = i
	}
	// Streams, interned, then ordered by a hash of their name: the order in
	// which unowned streams are handed out and moved streams are chosen.
	type stream struct {
		name string
		rank uint64
	}
	var all []stream
	index := make(map[string]int)
	for _, id := range ids {
		for _, l := range lists[id] {
			for _, s := range l {
				if _, ok := index[s]; !ok {
					index[s] = len(all)
					h := fnv.New64a()
					h.Write([]byte(s))
					all = append(all, stream{s, h.Sum64()})
				}
			}
		}
	}
	slices.SortFunc(all, func(a, b stream) int {
		if c := cmp.Compare(a.rank, b.rank); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
	for p, s := range all {
		index[s.name] = p
	}
	S, R := len(all), len(ids)
	words := (S + 63) / 64
	can := make([]uint64, R*words) // member m can run stream p: bit p of row m
	canRun := func(m, p int) bool { return can[m*words+p/64]&(1<<(p%64)) != 0 }
	for m, id := range ids {
		for _, l := range lists[id] {
			for _, s := range l {
				p := index[s]
				can[m*words+p/64] |= 1 << (p % 64)
			}
		}
	}

	owner := make([]int, S)
	held := make([][]int, R) // member → stream positions, ascending
	// Keep every valid current ownership.
	for p, s := range all {
		owner[p] = -1
		if o, ok := owners[s.name]; ok {
			if m, ok := memberIdx[o]; ok && canRun(m, p) {
				owner[p] = m
				held[m] = append(held[m], p)
			}
		}
	}
	// Streams without an owner go to the least loaded member that can run
	// them, in rank order.
	for p := range all {
		if owner[p] >= 0 {
			continue
		}
		best := -1
		for m := range R {
			if canRun(m, p) && (best < 0 || len(held[m]) < len(held[best])) {
				best = m
			}
		}
		owner[p] = best
		i, _ := slices.BinarySearch(held[best], p)
		held[best] = slices.Insert(held[best], i, p)
	}
	// Move single streams from the most to the least loaded members while
	// two members differ by more than one and one can take a stream of the
	// other.
	order := make([]int, R)
	for i := range order {
		order[i] = i
	}
	for {
		slices.SortFunc(order, func(a, b int) int {
			if c := cmp.Compare(len(held[b]), len(held[a])); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
		moved := false
	search:
		for _, over := range order {
			for j := len(order) - 1; j >= 0; j-- {
				under := order[j]
				if len(held[over])-len(held[under]) < 2 {
					break
				}
				for k, p := range held[over] {
					if !canRun(under, p) {
						continue
					}
					held[over] = slices.Delete(held[over], k, k+1)
					i, _ := slices.BinarySearch(held[under], p)
					held[under] = slices.Insert(held[under], i, p)
					owner[p] = under
					moved = true
					break search
				}
			}
		}
		if !moved {
			break
		}
	}
	out := make(map[string]string, S)
	for p, s := range all {
		out[s.name] = ids[owner[p]]
	}
	return out
}

// sortedKeys returns the keys of m, sorted.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// revokeReason is why this member gives up a stream it holds: it is
// leaving, the stream is no longer wanted, or the assignment moved it.
func revokeReason(leaving, wanted bool) Reason {
	switch {
	case leaving:
		return ReasonShutdown
	case !wanted:
		return ReasonRemoved
	}
	return ReasonRebalance
}
