package emulator

import (
	"encoding/json"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/restless-stream/ingest/client"
)

type kind int

const (
	kindManaged  kind = iota // created through the REST API
	kindDemo                 // the built-in "demo" stream
	kindFirehose             // synthetic events, no poller
	kindSession              // a direct session
	kindDirect               // an ad-hoc direct stream (/direct)
)

// streamConfig holds the fields of a stream (and the inputs of a direct
// stream), as the Stream model of package client writes them: it is the
// configuration part of the REST answers, of the state file and of direct
// setup's config.
type streamConfig struct {
	Name              string                   `json:"name"`
	Description       string                   `json:"description"`
	Status            client.StreamStatus      `json:"status"`
	Method            client.HTTPMethod        `json:"method"`
	URL               string                   `json:"url"`
	Headers           map[string]string        `json:"headers"`
	Body              json.RawMessage          `json:"body,omitempty"`
	PayloadMode       client.PayloadMode       `json:"payloadMode"`
	PollingInterval   float64                  `json:"pollingInterval"`
	JQFilter          string                   `json:"jqFilter,omitempty"`
	PollingStrategies []client.PollingStrategy `json:"pollingStrategies,omitempty"`
}

func (c streamConfig) clone() streamConfig {
	if c.Headers != nil {
		h := make(map[string]string, len(c.Headers))
		for k, v := range c.Headers {
			h[k] = v
		}
		c.Headers = h
	}
	c.PollingStrategies = append([]client.PollingStrategy(nil), c.PollingStrategies...)
	return c
}

// stream is one event source of the emulator.
type stream struct {
	id     string
	kind   kind
	secret string
	feed   *feed // nil for firehose streams
	fire   *firehose
	faults faultState
	usage  usage
	subs   atomic.Int64

	// Guarded by Emulator.mu.
	cfg       streamConfig
	created   time.Time
	updated   time.Time
	poller    *poller
	expires   time.Time // sessions
	dedupeKey string    // sessions
	idleSince time.Time // direct streams: when the last connection left
}

// usage counts polls and events per UTC day, for credit-usage-stats.
type usage struct {
	mu   sync.Mutex
	days map[string]*dayUsage
}

type dayUsage struct{ polls, events int64 }

func (u *usage) add(now time.Time, polls, events int64) {
	day := now.UTC().Format("2006-01-02")
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.days == nil {
		u.days = map[string]*dayUsage{}
	}
	d := u.days[day]
	if d == nil {
		d = &dayUsage{}
		u.days[day] = d
	}
	d.polls += polls
	d.events += events
}

// report returns the credit usage: one credit per upstream poll; events are
// counted but free.
func (u *usage) report(id string) client.StreamCreditUsageStats {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := client.StreamCreditUsageStats{StreamID: id, Daily: []client.DailyCreditUsage{}}
	for day, d := range u.days {
		out.TotalCredits += float64(d.polls)
		out.Daily = append(out.Daily, client.DailyCreditUsage{Date: day, Credits: float64(d.polls),
			ByChargeType: []client.CreditUsageChargeTypeBreakdown{
				{ChargeType: "POLL", Credits: float64(d.polls), Count: d.polls},
				{ChargeType: "EVENT", Credits: 0, Count: d.events},
			}})
	}
	sort.Slice(out.Daily, func(i, j int) bool { return out.Daily[i].Date < out.Daily[j].Date })
	return out
}

// streamJSON is the Stream model of the REST API: client.Stream as a server
// writes it (hmacSecret and body only when present).
type streamJSON struct {
	ID string `json:"id"`
	streamConfig
	SSEURL       string    `json:"sseUrl"`
	WebSocketURL string    `json:"websocketUrl"`
	HMACSecret   string    `json:"hmacSecret,omitempty"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
}
