package adapt

import (
	"testing"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
)

// TestStatesAgree keeps the two vocabularies of connection states in step:
// same values, same names.
func TestStatesAgree(t *testing.T) {
	for s := client.StateConnecting; s <= client.StateFailed; s++ {
		if got := State(s); got.String() != s.String() {
			t.Errorf("client state %v maps to ingest state %v", s, got)
		}
	}
	if State(client.StateFailed) != ingest.StateFailed || State(client.StateConnecting) != ingest.StateConnecting {
		t.Error("the ends of the state lists disagree")
	}
}
