package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Values in the coordination bucket. Every member reads what every other
// wrote, so decoding bounds and checks everything.

const (
	memberPrefix = "m."
	leasePrefix  = "s."

	maxMemberValue = 8 << 20
	maxLeaseValue  = 4 << 10
)

type memberValue struct {
	V       int      `json:"v"`
	Session string   `json:"session"`
	Streams []string `json:"streams"`
	Leaving bool     `json:"leaving,omitempty"`
}

type leaseValue struct {
	V       int    `json:"v"`
	Member  string `json:"member"`
	Session string `json:"session"`
	State   string `json:"state"` // "held" or "released"
	Reason  Reason `json:"reason,omitempty"`
}

const (
	stateHeld     = "held"
	stateReleased = "released"
)

func encodeMember(v memberValue) []byte {
	v.V = 1
	b, _ := json.Marshal(v) // plain strings and bools: cannot fail
	return b
}

func decodeMember(b []byte) (memberValue, error) {
	var v memberValue
	if len(b) > maxMemberValue {
		return v, fmt.Errorf("member value of %d bytes", len(b))
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, err
	}
	if v.V != 1 {
		return v, fmt.Errorf("member value version %d", v.V)
	}
	if v.Session == "" || len(v.Session) > 64 {
		return v, errors.New("member value without a valid session")
	}
	streams, err := normalizeStreams(v.Streams)
	if err != nil {
		return v, err
	}
	v.Streams = streams
	return v, nil
}

func encodeLease(v leaseValue) []byte {
	v.V = 1
	b, _ := json.Marshal(v)
	return b
}

func decodeLease(b []byte) (leaseValue, error) {
	var v leaseValue
	if len(b) > maxLeaseValue {
		return v, fmt.Errorf("lease value of %d bytes", len(b))
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, err
	}
	if v.V != 1 {
		return v, fmt.Errorf("lease value version %d", v.V)
	}
	if err := ValidateMember(v.Member); err != nil {
		return v, err
	}
	if v.Session == "" || len(v.Session) > 64 {
		return v, errors.New("lease value without a valid session")
	}
	if v.State != stateHeld && v.State != stateReleased {
		return v, fmt.Errorf("lease state %q", v.State)
	}
	return v, nil
}

// splitKey returns the kind ("m." or "s.") and the name of a bucket key, or
// ok false for a key that is not ours or names nothing valid.
func splitKey(key string) (prefix, name string, ok bool) {
	switch {
	case strings.HasPrefix(key, memberPrefix):
		name = key[len(memberPrefix):]
		return memberPrefix, name, ValidateMember(name) == nil
	case strings.HasPrefix(key, leasePrefix):
		name = key[len(leasePrefix):]
		return leasePrefix, name, validateStream(name) == nil
	}
	return "", "", false
}
