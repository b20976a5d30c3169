package cluster

import (
	"bytes"
	"cmp"
	"compress/flate"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// The bytes members exchange through the group coordinator: each member's
// JoinGroup metadata (joinMeta), and the leader's assignment for each member
// in SyncGroup (assignment). Both are a version byte followed by deflated
// JSON, so that a thousand stream names fit the coordinator's message limits.
// Every member decodes what a peer wrote, so decoding bounds everything.

const (
	wireVersion = 1
	maxWireSize = 16 << 20 // decoded
)

// joinMeta is what a member tells the leader when it joins.
type joinMeta struct {
	Member  string   `json:"member"`
	Session string   `json:"session"`
	Streams []string `json:"streams"`         // the streams it can run
	Owned   []string `json:"owned,omitempty"` // the streams it holds now, revoked ones included until released
	Gen     int32    `json:"gen"`             // the generation of the last assignment it applied
	Leaving bool     `json:"leaving,omitempty"`
}

// assignment is what the leader gives one member.
type assignment struct {
	Gen     int32             `json:"gen"`
	Streams []string          `json:"streams"`           // the member's streams from this generation on
	Reasons map[string]Reason `json:"reasons,omitempty"` // why, for the streams new to it
	Members []assignedMember  `json:"members"`           // the whole group after this rebalance
}

// assignedMember is one member in an assignment's picture of the group.
type assignedMember struct {
	Member  string   `json:"member"`
	Session string   `json:"session"`
	Streams []string `json:"streams"` // held or assigned; a revoked stream stays with its holder until released
	Leaving bool     `json:"leaving,omitempty"`
}

func encodeWire(v any) []byte {
	var buf bytes.Buffer
	buf.WriteByte(wireVersion)
	zw, _ := flate.NewWriter(&buf, flate.BestSpeed) // a valid level: cannot fail
	_ = json.NewEncoder(zw).Encode(v)               // writes to memory: cannot fail
	_ = zw.Close()
	return buf.Bytes()
}

func decodeWire(b []byte, v any) error {
	if len(b) == 0 {
		return errors.New("empty")
	}
	if b[0] != wireVersion {
		return fmt.Errorf("version %d, this member reads %d", b[0], wireVersion)
	}
	zr := flate.NewReader(bytes.NewReader(b[1:]))
	defer zr.Close()
	raw, err := io.ReadAll(io.LimitReader(zr, maxWireSize+1))
	if err != nil {
		return err
	}
	if len(raw) > maxWireSize {
		return fmt.Errorf("more than %d bytes decoded", maxWireSize)
	}
	return json.Unmarshal(raw, v)
}

func decodeJoinMeta(b []byte) (joinMeta, error) {
	var m joinMeta
	if err := decodeWire(b, &m); err != nil {
		return m, err
	}
	if err := ValidateMember(m.Member); err != nil {
		return m, err
	}
	if m.Session == "" || len(m.Session) > 64 {
		return m, errors.New("no valid session")
	}
	var err error
	if m.Streams, err = normalizeStreams(m.Streams); err != nil {
		return m, err
	}
	if m.Owned, err = normalizeStreams(m.Owned); err != nil {
		return m, err
	}
	return m, nil
}

func decodeAssignment(b []byte) (assignment, error) {
	var a assignment
	if err := decodeWire(b, &a); err != nil {
		return a, err
	}
	var err error
	if a.Streams, err = normalizeStreams(a.Streams); err != nil {
		return a, err
	}
	if len(a.Members) > maxStreams {
		return a, fmt.Errorf("%d members", len(a.Members))
	}
	for i := range a.Members {
		if err := ValidateMember(a.Members[i].Member); err != nil {
			return a, err
		}
		if a.Members[i].Streams, err = normalizeStreams(a.Members[i].Streams); err != nil {
			return a, err
		}
	}
	for s, r := range a.Reasons {
		if !slices.Contains(a.Streams, s) {
			delete(a.Reasons, s)
			continue
		}
		switch r {
		case ReasonNew, ReasonRebalance, ReasonFailover, ReasonShutdown:
		default:
			a.Reasons[s] = ReasonNew
		}
	}
	return a, nil
}

// leaderAssign is the group leader's work: from the members' join metadata
// and the group as the leader last saw it (prev), the assignment of every
// member for generation gen.
//
// Incremental and cooperative, as Kafka Connect's distributed herder and the
// cooperative sticky assignor do it: a stream that moves is first only taken
// away from its holder (it disappears from the holder's assignment, which
// revokes it); it is given to its new owner in a later rebalance, once the
// holder has released it and stopped reporting it as owned. A stream is
// never in two members' hands. While a member's metadata cannot be read,
// no stream is given out: that member may hold it.
func leaderAssign(gen int32, joined []joinedMember, prev []assignedMember) map[string][]byte {
	type mem struct {
		id    string
		meta  joinMeta
		valid bool
	}
	ms := make([]mem, 0, len(joined))
	unknown := false // a member whose metadata cannot be read may hold anything
	for _, j := range joined {
		m, err := decodeJoinMeta(j.metadata)
		ms = append(ms, mem{id: j.id, meta: m, valid: err == nil})
		unknown = unknown || err != nil
	}
	slices.SortFunc(ms, func(a, b mem) int { return cmp.Compare(a.id, b.id) })

	// Current holders. Two members claiming a stream (one missed that it
	// lost it): the claim from the later generation stands.
	owner := map[string]int{} // stream → index into ms
	for i, m := range ms {
		if !m.valid {
			continue
		}
		for _, s := range m.meta.Owned {
			if o, ok := owner[s]; !ok || m.meta.Gen > ms[o].meta.Gen {
				owner[s] = i
			}
		}
	}
	var candidates []Member
	for _, m := range ms {
		if m.valid && !m.meta.Leaving {
			candidates = append(candidates, Member{ID: m.id, Streams: m.meta.Streams})
		}
	}
	owners := make(map[string]string, len(owner))
	for s, i := range owner {
		owners[s] = ms[i].id
	}
	target := Assign(candidates, owners)

	// Why a stream comes to its new owner: from who held it in the group as
	// the leader last saw it.
	prevHolder := map[string]string{} // stream → member "/" session
	for _, pm := range prev {
		for _, s := range pm.Streams {
			prevHolder[s] = pm.Member + "/" + pm.Session
		}
	}
	present := map[string]bool{} // member "/" session → leaving
	for _, m := range ms {
		if m.valid {
			present[m.meta.Member+"/"+m.meta.Session] = m.meta.Leaving
		}
	}

	mine := make([][]string, len(ms))
	reasons := make([]map[string]Reason, len(ms))
	holds := make([][]string, len(ms)) // for the group picture
	idx := map[string]int{}
	for i, m := range ms {
		idx[m.id] = i
	}
	for _, s := range sortedKeys(target) {
		to := idx[target[s]]
		o, held := owner[s]
		switch {
		case held && o == to:
			mine[to] = append(mine[to], s)
			holds[to] = append(holds[to], s)
		case held:
			// Revoked from its holder; given out once released.
			holds[o] = append(holds[o], s)
		case unknown:
			// Nothing is given out while a member that may hold it cannot
			// be read.
		default:
			mine[to] = append(mine[to], s)
			holds[to] = append(holds[to], s)
			if reasons[to] == nil {
				reasons[to] = map[string]Reason{}
			}
			reasons[to][s] = handoverReason(prevHolder[s], ms[to].meta.Member+"/"+ms[to].meta.Session, present)
		}
	}
	// Streams held but no longer run by anyone (removed everywhere) stay
	// with their holder until released.
	for s, o := range owner {
		if _, ok := target[s]; !ok {
			holds[o] = append(holds[o], s)
		}
	}
	group := make([]assignedMember, 0, len(ms))
	for i, m := range ms {
		if !m.valid {
			continue
		}
		slices.Sort(holds[i])
		group = append(group, assignedMember{Member: m.meta.Member, Session: m.meta.Session, Streams: holds[i], Leaving: m.meta.Leaving})
	}
	slices.SortFunc(group, func(a, b assignedMember) int { return cmp.Compare(a.Member+"/"+a.Session, b.Member+"/"+b.Session) })
	out := make(map[string][]byte, len(ms))
	for i, m := range ms {
		out[m.id] = encodeWire(assignment{Gen: gen, Streams: mine[i], Reasons: reasons[i], Members: group})
	}
	return out
}

// handoverReason says why a stream that nobody holds now comes to member to,
// given who held it in the previous picture of the group and who is present
// now (and leaving).
func handoverReason(prevHolder, to string, present map[string]bool) Reason {
	if prevHolder == "" || prevHolder == to {
		return ReasonNew
	}
	leaving, ok := present[prevHolder]
	switch {
	case !ok:
		return ReasonFailover
	case leaving:
		return ReasonShutdown
	}
	return ReasonRebalance
}
