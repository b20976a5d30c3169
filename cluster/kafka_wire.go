package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/findcoordinator"
	"github.com/segmentio/kafka-go/protocol/heartbeat"
	"github.com/segmentio/kafka-go/protocol/joingroup"
	"github.com/segmentio/kafka-go/protocol/leavegroup"
	"github.com/segmentio/kafka-go/protocol/syncgroup"
)

// groupAPI is the broker's classic group protocol as the Kafka coordinator
// uses it. Broker errors come back as kafka.Error values.
type groupAPI interface {
	// join sends JoinGroup; it blocks until the rebalance completes. On
	// kafka.MemberIDRequired the response carries the member id to join
	// with.
	join(ctx context.Context, r joinRequest) (joinResponse, error)
	// sync sends SyncGroup (with the assignments when leader) and returns
	// this member's assignment.
	sync(ctx context.Context, r syncRequest) ([]byte, error)
	heartbeat(ctx context.Context, memberID string, gen int32) error
	leave(ctx context.Context, memberID string) error
}

type joinRequest struct {
	memberID  string
	session   time.Duration
	rebalance time.Duration
	metadata  []byte
}

type joinResponse struct {
	memberID string
	leader   string
	gen      int32
	members  []joinedMember // the leader's only
}

type joinedMember struct {
	id       string
	metadata []byte
}

type syncRequest struct {
	memberID    string
	gen         int32
	assignments map[string][]byte // member id → assignment; the leader's only
}

const (
	// protocolType keeps the group apart from consumer groups and Kafka
	// Connect: the coordinator refuses a member with another type.
	protocolType = "restless-ingest"
	protocolName = "sticky-cooperative-v1"
)

// kafkaGroup sends the group protocol through kafka-go's transport, with the
// raw request types of its protocol packages: JoinGroup and SyncGroup carry
// our own metadata bytes and protocol type, and every response's error code
// is read before anything else. (kafka.Client's JoinGroup and SyncGroup wrap
// the metadata in the consumer protocol's encoding, and SyncGroup decodes the
// assignment before it looks at the error code.)
type kafkaGroup struct {
	rt    kafka.RoundTripper
	addr  net.Addr
	group string

	mu    sync.Mutex
	coord net.Addr // the group coordinator, for heartbeats
}

func newKafkaGroup(client *kafka.Client, group string) *kafkaGroup {
	rt := client.Transport
	if rt == nil {
		rt = kafka.DefaultTransport
	}
	return &kafkaGroup{rt: rt, addr: client.Addr, group: group}
}

func codeErr(code int16) error {
	if code == 0 {
		return nil
	}
	return kafka.Error(code)
}

func (k *kafkaGroup) join(ctx context.Context, r joinRequest) (joinResponse, error) {
	m, err := k.rt.RoundTrip(ctx, k.addr, &joingroup.Request{
		GroupID:            k.group,
		SessionTimeoutMS:   int32(r.session.Milliseconds()),
		RebalanceTimeoutMS: int32(r.rebalance.Milliseconds()),
		MemberID:           r.memberID,
		ProtocolType:       protocolType,
		Protocols:          []joingroup.RequestProtocol{{Name: protocolName, Metadata: r.metadata}},
	})
	if err != nil {
		return joinResponse{}, err
	}
	resp, ok := m.(*joingroup.Response)
	if !ok {
		return joinResponse{}, fmt.Errorf("JoinGroup answered with %T", m)
	}
	out := joinResponse{memberID: resp.MemberID, leader: resp.LeaderID, gen: resp.GenerationID}
	if err := codeErr(resp.ErrorCode); err != nil {
		return out, err
	}
	for _, mem := range resp.Members {
		out.members = append(out.members, joinedMember{id: mem.MemberID, metadata: mem.Metadata})
	}
	return out, nil
}

func (k *kafkaGroup) sync(ctx context.Context, r syncRequest) ([]byte, error) {
	req := &syncgroup.Request{
		GroupID:      k.group,
		GenerationID: r.gen,
		MemberID:     r.memberID,
		ProtocolType: protocolType,
		ProtocolName: protocolName,
	}
	for _, id := range sortedKeys(r.assignments) {
		req.Assignments = append(req.Assignments, syncgroup.RequestAssignment{MemberID: id, Assignment: r.assignments[id]})
	}
	m, err := k.rt.RoundTrip(ctx, k.addr, req)
	if err != nil {
		return nil, err
	}
	resp, ok := m.(*syncgroup.Response)
	if !ok {
		return nil, fmt.Errorf("SyncGroup answered with %T", m)
	}
	if err := codeErr(resp.ErrorCode); err != nil {
		return nil, err
	}
	return resp.Assignments, nil
}

// coordinator returns the group coordinator's address, asking the cluster
// when it is not known. Heartbeats go there directly: kafka-go routes
// JoinGroup, SyncGroup and LeaveGroup to the coordinator itself, but not
// Heartbeat.
func (k *kafkaGroup) coordinator(ctx context.Context) (net.Addr, error) {
	k.mu.Lock()
	c := k.coord
	k.mu.Unlock()
	if c != nil {
		return c, nil
	}
	m, err := k.rt.RoundTrip(ctx, k.addr, &findcoordinator.Request{Key: k.group})
	if err != nil {
		return nil, err
	}
	resp, ok := m.(*findcoordinator.Response)
	if !ok {
		return nil, fmt.Errorf("FindCoordinator answered with %T", m)
	}
	if err := codeErr(resp.ErrorCode); err != nil {
		return nil, err
	}
	if resp.Host == "" || resp.Port <= 0 || resp.Port > 65535 {
		return nil, fmt.Errorf("FindCoordinator answered with address %q port %d", resp.Host, resp.Port)
	}
	c = kafka.TCP(net.JoinHostPort(resp.Host, strconv.Itoa(int(resp.Port))))
	k.mu.Lock()
	k.coord = c
	k.mu.Unlock()
	return c, nil
}

func (k *kafkaGroup) forgetCoordinator() {
	k.mu.Lock()
	k.coord = nil
	k.mu.Unlock()
}

func (k *kafkaGroup) heartbeat(ctx context.Context, memberID string, gen int32) error {
	addr, err := k.coordinator(ctx)
	if err != nil {
		return err
	}
	m, err := k.rt.RoundTrip(ctx, addr, &heartbeat.Request{GroupID: k.group, GenerationID: gen, MemberID: memberID})
	if err != nil {
		k.forgetCoordinator()
		return err
	}
	resp, ok := m.(*heartbeat.Response)
	if !ok {
		return fmt.Errorf("Heartbeat answered with %T", m)
	}
	err = codeErr(resp.ErrorCode)
	if errors.Is(err, kafka.NotCoordinatorForGroup) || errors.Is(err, kafka.GroupCoordinatorNotAvailable) {
		k.forgetCoordinator()
	}
	return err
}

func (k *kafkaGroup) leave(ctx context.Context, memberID string) error {
	m, err := k.rt.RoundTrip(ctx, k.addr, &leavegroup.Request{
		GroupID: k.group,
		Members: []leavegroup.RequestMember{{MemberID: memberID}},
	})
	if err != nil {
		return err
	}
	resp, ok := m.(*leavegroup.Response)
	if !ok {
		return fmt.Errorf("LeaveGroup answered with %T", m)
	}
	if err := codeErr(resp.ErrorCode); err != nil {
		return err
	}
	for _, mem := range resp.Members {
		if err := codeErr(mem.ErrorCode); err != nil {
			return err
		}
	}
	return nil
}
