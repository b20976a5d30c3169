package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupAPI is the broker's classic group protocol as the Kafka coordinator
// uses it. Broker error codes come back as *kerr.Error values.
type groupAPI interface {
	// join sends JoinGroup; it blocks until the rebalance completes. On
	// kerr.MemberIDRequired the response carries the member id to join with.
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

// kgoGroup sends the group protocol with franz-go: kgo routes each request
// to the group's coordinator (and follows it when it moves), sends JoinGroup
// and SyncGroup on a connection of their own so that heartbeats are not
// queued behind a pending join, and kmsg encodes every version of the four
// requests correctly. (kafka-go v0.4.51's Heartbeat and LeaveGroup messages
// read the error code before the throttle time, which comes first since
// version 1, so every heartbeat looks successful.)
type kgoGroup struct {
	cl    *kgo.Client
	group string
}

func (k *kgoGroup) join(ctx context.Context, r joinRequest) (joinResponse, error) {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group = k.group
	req.SessionTimeoutMillis = int32(r.session.Milliseconds())
	req.RebalanceTimeoutMillis = int32(r.rebalance.Milliseconds())
	req.MemberID = r.memberID
	req.ProtocolType = protocolType
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = protocolName, r.metadata
	req.Protocols = append(req.Protocols, p)
	resp, err := req.RequestWith(ctx, k.cl)
	if err != nil {
		return joinResponse{}, err
	}
	out := joinResponse{memberID: resp.MemberID, leader: resp.LeaderID, gen: resp.Generation}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return out, err
	}
	if resp.Protocol != nil && *resp.Protocol != protocolName {
		return out, fmt.Errorf("the coordinator chose protocol %q", *resp.Protocol)
	}
	for _, m := range resp.Members {
		out.members = append(out.members, joinedMember{id: m.MemberID, metadata: m.ProtocolMetadata})
	}
	return out, nil
}

func (k *kgoGroup) sync(ctx context.Context, r syncRequest) ([]byte, error) {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group = k.group
	req.Generation = r.gen
	req.MemberID = r.memberID
	req.ProtocolType = kmsg.StringPtr(protocolType)
	req.Protocol = kmsg.StringPtr(protocolName)
	for _, id := range sortedKeys(r.assignments) {
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID, a.MemberAssignment = id, r.assignments[id]
		req.GroupAssignment = append(req.GroupAssignment, a)
	}
	resp, err := req.RequestWith(ctx, k.cl)
	if err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	return resp.MemberAssignment, nil
}

func (k *kgoGroup) heartbeat(ctx context.Context, memberID string, gen int32) error {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.Generation, req.MemberID = k.group, gen, memberID
	resp, err := req.RequestWith(ctx, k.cl)
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(resp.ErrorCode)
}

func (k *kgoGroup) leave(ctx context.Context, memberID string) error {
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = k.group
	req.MemberID = memberID // v0-v2
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = memberID // v3+
	req.Members = append(req.Members, m)
	resp, err := req.RequestWith(ctx, k.cl)
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return err
	}
	for _, mm := range resp.Members {
		if err := kerr.ErrorForCode(mm.ErrorCode); err != nil {
			return err
		}
	}
	return nil
}
