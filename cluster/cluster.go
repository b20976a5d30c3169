// Package cluster lets several replicas of the daemon share the streams
// through the broker they already publish to: membership, a balanced and
// sticky assignment, handover and fencing.
//
// Two coordinators implement the same contract ([Coordinator]):
//
//   - [NATS] keeps members and leases in a JetStream key-value bucket
//     (restless_ingest_<name>) whose keys expire after the lease TTL: member
//     keys are refreshed by heartbeats, and each stream has one lease key that
//     moves between members only by compare-and-set on its revision. There is
//     no leader; every member computes the same target assignment from the
//     same bucket and moves only its own leases.
//   - [Kafka] joins the broker's group coordinator as the group
//     restless-ingest-<name> with a protocol type of its own. The group's
//     leader assigns streams incrementally and cooperatively, the way Kafka
//     Connect's distributed herder does (KIP-415): members report what they
//     own, the leader revokes only what must move, and a follow-up rebalance
//     gives the revoked streams out once their old owners released them. The
//     generation fences members that lost their membership.
//
// Both use [Assign], a pure function: each member ends with ⌊S/R⌋ or ⌈S/R⌉
// of S streams over R members, and a change moves only the streams balance
// needs.
//
// The consumer (the daemon) sets the streams it wants shared with
// SetStreams, runs the coordinator with Run, and receives [Event]s: a stream
// Assigned to it with a [Lease]; a stream Revoked (stop reading, drain, save
// the checkpoint, then call [Lease.Release]); a stream Lost (stop at once,
// publish and save nothing more). A new owner is only ever given a stream
// after its old owner released it, or after the old owner's lease or
// membership expired. The lease's context is cancelled the moment the
// stream is lost, from a timer of its own: a member that cannot renew
// within the lease TTL stops before anybody else may start.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Coordinator is what the daemon needs from a coordination backend. [NATS]
// and [Kafka] implement it.
type Coordinator interface {
	// SetStreams replaces the set of streams this member can run and wants
	// shared. It may be called before Run and at any time while it runs
	// (configuration reload, discovery). A stream is only ever assigned to a
	// member that has it in its set.
	SetStreams(streams []string) error
	// Events delivers this member's assignment changes, in order. It is
	// closed when Run returns; the leases of undelivered events are ended by
	// then.
	Events() <-chan Event
	// Run joins the cluster and coordinates until ctx is done or Leave has
	// completed. It returns nil in both cases; an error only when it cannot
	// go on (for example another live replica uses the same member id). When
	// ctx ends first, every lease still held ends with [ErrStopped] and the
	// other members take the streams over after the lease TTL.
	Run(ctx context.Context) error
	// Leave hands every stream of this member over and leaves the cluster:
	// each held stream is Revoked with [ReasonShutdown], and once all are
	// released the member leaves and Run returns. The caller must keep
	// handling events while Leave runs. Leave returns when Run has returned,
	// or ctx's error when ctx ends first.
	Leave(ctx context.Context) error
	// Status is the member's current view of the cluster.
	Status() Status
}

// EventKind says what happened to one stream of this member.
type EventKind int

const (
	// Assigned: this member owns the stream from now on. Start its lane
	// with the lease's context, after any earlier lane of the same stream
	// has stopped.
	Assigned EventKind = iota + 1
	// Revoked: the stream moves to another member. Stop reading, let the
	// in-flight events be acknowledged, save the checkpoint, then call
	// [Lease.Release]. The lease stays valid (and renewed) until then.
	Revoked
	// Lost: the stream is no longer this member's and may already be
	// another's. Stop at once: no further publish, no checkpoint save. The
	// lease's context is already cancelled; do not call Release.
	Lost
)

func (k EventKind) String() string {
	switch k {
	case Assigned:
		return "assigned"
	case Revoked:
		return "revoked"
	case Lost:
		return "lost"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Reason says why an event happened.
type Reason string

const (
	// ReasonNew (Assigned): no other member owned the stream before, as far
	// as the cluster knows.
	ReasonNew Reason = "new"
	// ReasonRebalance (Assigned, Revoked): the stream moved for balance, after
	// a member joined or a stream set changed.
	ReasonRebalance Reason = "rebalance"
	// ReasonFailover (Assigned): the previous owner went silent and its lease
	// or membership expired.
	ReasonFailover Reason = "failover"
	// ReasonShutdown (Assigned, Revoked): the previous owner is leaving the
	// cluster cleanly.
	ReasonShutdown Reason = "shutdown"
	// ReasonRemoved (Revoked): this member no longer has the stream in its
	// set, or no member has.
	ReasonRemoved Reason = "removed"
	// ReasonExpired (Lost): the lease or membership was not renewed within
	// the lease TTL.
	ReasonExpired Reason = "expired"
	// ReasonFenced (Lost): the broker says another member owns the stream, or
	// that this member is no longer in the group.
	ReasonFenced Reason = "fenced"
	// ReasonStopped (Lost): Run returned before the stream was handed over.
	ReasonStopped Reason = "stopped"
)

// Handover reports whether an Assigned event with this reason took the
// stream over from another member: the reasons the metric
// ingest_stream_handovers_total counts.
func (r Reason) Handover() bool {
	return r == ReasonRebalance || r == ReasonFailover || r == ReasonShutdown
}

// Event is one change to this member's assignment.
type Event struct {
	Kind   EventKind
	Lease  *Lease
	Reason Reason
}

// Stream is the event's stream name.
func (e Event) Stream() string { return e.Lease.Stream() }

func (e Event) String() string {
	return fmt.Sprintf("%s %s (%s, %s)", e.Kind, e.Lease.Stream(), e.Reason, e.Lease.Token())
}

// Token identifies one ownership of one stream: which member, and the
// broker's epoch of that ownership. A later owner of the same stream always
// has a different token; within one cluster incarnation its epoch is larger.
type Token struct {
	// Member is the owner's member id (cluster.member).
	Member string
	// Epoch is the lease key's revision when the lease was taken (NATS), or
	// the group generation of the assignment (Kafka).
	Epoch uint64
}

func (t Token) String() string { return t.Member + "/" + strconv.FormatUint(t.Epoch, 10) }

// Status is one member's view of the cluster, for /readyz, metrics and
// GET /v1/cluster.
type Status struct {
	// Member is this member's id.
	Member string
	// Joined is true once this member has joined the cluster (it may own no
	// stream), and false again once it has left or lost its membership.
	Joined bool
	// Members lists the live members, sorted by id, with the streams each
	// owns as far as this member knows.
	Members []MemberStatus
	// Owned lists the streams this member holds a lease on, sorted.
	Owned []string
}

// MemberStatus is one member in a [Status].
type MemberStatus struct {
	ID      string
	Streams []string
	Leaving bool
}

var (
	// ErrExpired ends a lease that could not be renewed within the lease
	// TTL: the member was paused or cut off from the broker.
	ErrExpired = errors.New("cluster: lease expired")
	// ErrFenced ends a lease that the broker says is no longer this
	// member's: another member took it, or the group no longer knows this
	// member.
	ErrFenced = errors.New("cluster: fenced")
	// ErrReleased ends a lease after [Lease.Release].
	ErrReleased = errors.New("cluster: lease released")
	// ErrStopped ends the leases still held when Run returns.
	ErrStopped = errors.New("cluster: coordinator stopped")
	// ErrMemberConflict is returned by Run when another live replica
	// uses the same member id.
	ErrMemberConflict = errors.New("cluster: another live replica uses this member id")
)

// Limits on what a member accepts, from its configuration and from its peers.
const (
	maxNameLen    = 64
	maxMemberLen  = 128
	maxStreamLen  = 200
	maxStreams    = 100_000
	minLeaseTTL   = time.Second
	maxLeaseTTL   = 10 * time.Minute
	defaultTTL    = 10 * time.Second
	defaultPrefix = "restless_ingest_"
)

// ValidateName checks a cluster name (cluster.name): 1 to 64 characters
// from [a-z0-9_-].
func ValidateName(name string) error {
	if name == "" {
		return errors.New("cluster: empty cluster name")
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("cluster: cluster name longer than %d bytes", maxNameLen)
	}
	if i := strings.IndexFunc(name, func(r rune) bool { return !lowerWord(r) }); i >= 0 {
		return fmt.Errorf("cluster: cluster name %q: character %q at %d is not one of [a-z0-9_-]", name, name[i], i)
	}
	return nil
}

// ValidateMember checks a member id (cluster.member): 1 to 128 characters
// from [A-Za-z0-9_.-], not starting or ending with a dot and without two
// dots in a row (it is part of a NATS subject).
func ValidateMember(id string) error {
	if id == "" {
		return errors.New("cluster: empty member id")
	}
	if len(id) > maxMemberLen {
		return fmt.Errorf("cluster: member id longer than %d bytes", maxMemberLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if lowerWord(rune(c)) || (c >= 'A' && c <= 'Z') || c == '.' {
			continue
		}
		return fmt.Errorf("cluster: member id %q: character %q at %d is not one of [A-Za-z0-9_.-]", id, c, i)
	}
	if id[0] == '.' || id[len(id)-1] == '.' || strings.Contains(id, "..") {
		return fmt.Errorf("cluster: member id %q: a dot may only separate other characters", id)
	}
	return nil
}

// validateStream checks a stream name: 1 to 200 characters from [a-z0-9_-],
// the rule every checkpoint store applies.
func validateStream(s string) error {
	if s == "" {
		return errors.New("cluster: empty stream name")
	}
	if len(s) > maxStreamLen {
		return fmt.Errorf("cluster: stream name longer than %d bytes", maxStreamLen)
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return !lowerWord(r) }); i >= 0 {
		return fmt.Errorf("cluster: stream name %q: character %q at %d is not one of [a-z0-9_-]", s, s[i], i)
	}
	return nil
}

func lowerWord(r rune) bool {
	return (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' || r == '-'
}

// normalizeStreams validates streams and returns them sorted, without
// duplicates, in a new slice.
func normalizeStreams(streams []string) ([]string, error) {
	if len(streams) > maxStreams {
		return nil, fmt.Errorf("cluster: %d streams, more than %d", len(streams), maxStreams)
	}
	set := make(map[string]struct{}, len(streams))
	for _, s := range streams {
		if err := validateStream(s); err != nil {
			return nil, err
		}
		set[s] = struct{}{}
	}
	return sortedKeys(set), nil
}

// DefaultMember returns a member id for this process: the host name (its
// characters outside [A-Za-z0-9_-] replaced by "-") followed by "-" and six
// random hexadecimal digits.
func DefaultMember() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "ingest"
	}
	b := []byte(host)
	for i, c := range b {
		if !(lowerWord(rune(c)) || (c >= 'A' && c <= 'Z')) {
			b[i] = '-'
		}
	}
	if len(b) > maxMemberLen-7 {
		b = b[:maxMemberLen-7]
	}
	return string(b) + "-" + randomHex(3)
}

// randomHex returns 2n random hexadecimal digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather than returning an error)
	return hex.EncodeToString(b)
}

// checkTTL applies the lease TTL default and bounds.
func checkTTL(ttl time.Duration) (time.Duration, error) {
	if ttl == 0 {
		return defaultTTL, nil
	}
	if ttl < minLeaseTTL || ttl > maxLeaseTTL {
		return 0, fmt.Errorf("cluster: lease TTL %v is outside [%v, %v]", ttl, minLeaseTTL, maxLeaseTTL)
	}
	return ttl, nil
}
