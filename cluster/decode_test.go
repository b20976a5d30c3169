package cluster

import (
	"bytes"
	"compress/flate"
	"strings"
	"testing"
)

// Peers' bytes are input like any other: decoding bounds and checks them.

func TestDecodeWireBounds(t *testing.T) {
	// A deflate bomb: far more than maxWireSize once inflated.
	var buf bytes.Buffer
	buf.WriteByte(wireVersion)
	zw, _ := flate.NewWriter(&buf, flate.BestCompression)
	chunk := bytes.Repeat([]byte{' '}, 1<<20)
	for range 20 {
		zw.Write(chunk)
	}
	zw.Close()
	var m joinMeta
	if err := decodeWire(buf.Bytes(), &m); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("a bomb decoded: %v", err)
	}
	for _, b := range [][]byte{nil, {9}, {wireVersion, 1, 2, 3}} {
		if err := decodeWire(b, &m); err == nil {
			t.Errorf("%v decoded", b)
		}
	}
	good := encodeWire(joinMeta{Member: "a", Session: "s", Streams: []string{"x", "x", "y"}, Owned: []string{"y"}})
	if m, err := decodeJoinMeta(good); err != nil || len(m.Streams) != 2 {
		t.Errorf("decodeJoinMeta = %+v, %v", m, err)
	}
	for _, bad := range []joinMeta{
		{Member: "", Session: "s"},
		{Member: "a", Session: ""},
		{Member: "a", Session: "s", Streams: []string{"Bad"}},
		{Member: "a", Session: "s", Owned: []string{"../x"}},
		{Member: "a..b", Session: "s"},
	} {
		if _, err := decodeJoinMeta(encodeWire(bad)); err == nil {
			t.Errorf("%+v decoded", bad)
		}
	}
	a, err := decodeAssignment(encodeWire(assignment{Gen: 3, Streams: []string{"x"}, Reasons: map[string]Reason{"x": "bogus", "y": ReasonFailover}}))
	if err != nil || a.Reasons["x"] != ReasonNew || len(a.Reasons) != 1 {
		t.Errorf("decodeAssignment = %+v, %v: an unknown reason is new, a reason for a stream not given is dropped", a, err)
	}
}

func TestDecodeBucketValues(t *testing.T) {
	if _, err := decodeMember([]byte(`{"v":1,"session":"s","streams":["ok","Not OK"]}`)); err == nil {
		t.Error("a member with a bad stream name decoded")
	}
	if _, err := decodeMember(bytes.Repeat([]byte{'x'}, maxMemberValue+1)); err == nil {
		t.Error("an oversized member value decoded")
	}
	if _, err := decodeLease([]byte(`{"v":1,"member":"a","session":"s","state":"stolen"}`)); err == nil {
		t.Error("a lease in an unknown state decoded")
	}
	if _, err := decodeLease([]byte(`{"v":2,"member":"a","session":"s","state":"held"}`)); err == nil {
		t.Error("a lease of another version decoded")
	}
	for _, k := range []string{"m.", "s.", "s.Bad", "x.a", "m..a"} {
		if _, _, ok := splitKey(k); ok {
			t.Errorf("key %q accepted", k)
		}
	}
}

func FuzzDecodeWire(f *testing.F) {
	f.Add(encodeWire(joinMeta{Member: "a", Session: "s", Streams: []string{"x"}}))
	f.Add(encodeWire(assignment{Gen: 1, Streams: []string{"x"}, Members: []assignedMember{{Member: "a", Session: "s", Streams: []string{"x"}}}}))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := decodeJoinMeta(b); err == nil {
			if ValidateMember(m.Member) != nil || len(m.Streams) > maxStreams {
				t.Fatalf("accepted %+v", m)
			}
		}
		if a, err := decodeAssignment(b); err == nil {
			for s := range a.Reasons {
				if !Reason(a.Reasons[s]).Handover() && a.Reasons[s] != ReasonNew {
					t.Fatalf("reason %q", a.Reasons[s])
				}
			}
		}
		// A leader must cope with any metadata from any member.
		leaderAssign(1, []joinedMember{{id: "m1", metadata: b}, {id: "m2", metadata: encodeWire(joinMeta{Member: "b", Session: "s", Streams: []string{"x"}})}}, nil)
	})
}

func FuzzDecodeBucketValues(f *testing.F) {
	f.Add([]byte(`{"v":1,"session":"s","streams":["a"]}`))
	f.Add([]byte(`{"v":1,"member":"a","session":"s","state":"held"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := decodeMember(b); err == nil && v.Session == "" {
			t.Fatal("member without a session")
		}
		if v, err := decodeLease(b); err == nil && v.State != stateHeld && v.State != stateReleased {
			t.Fatalf("lease state %q", v.State)
		}
	})
}
