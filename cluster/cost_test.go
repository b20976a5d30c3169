package cluster

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The steady-state cost of coordination: three members sharing 1,000
// streams with the default lease TTL (10s), once settled. Each benchmark
// iteration is one second of a settled cluster; the figures are per second
// of wall time, for the whole cluster:
//
//	go test -run '^$' -bench SteadyState -benchtime 20x ./cluster/
//
// req/s: requests to the broker (NATS: key-value operations; Kafka: every
// request kfake handled). cpu-ms/s: CPU time of this process, which runs the
// three members (and, for Kafka, kfake itself). server-cpu-ms/s (NATS): CPU
// time of the shared nats-server process, which other tests may share.

const (
	costMembers = 3
	costStreams = 1000
)

// countingKV counts the requests a member makes and the watch entries it
// receives.
type countingKV struct {
	kvBackend
	reqs, watched *atomic.Int64
}

func (c countingKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	c.reqs.Add(1)
	return c.kvBackend.Put(ctx, key, value)
}

func (c countingKV) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	c.reqs.Add(1)
	return c.kvBackend.Create(ctx, key, value)
}

func (c countingKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	c.reqs.Add(1)
	return c.kvBackend.Update(ctx, key, value, rev)
}

func (c countingKV) Get(ctx context.Context, key string) (kvEntry, error) {
	c.reqs.Add(1)
	return c.kvBackend.Get(ctx, key)
}

func (c countingKV) Delete(ctx context.Context, key string) error {
	c.reqs.Add(1)
	return c.kvBackend.Delete(ctx, key)
}

func (c countingKV) Watch(ctx context.Context) (<-chan kvEntry, error) {
	c.reqs.Add(1)
	in, err := c.kvBackend.Watch(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan kvEntry, 64)
	go func() {
		defer close(out)
		for e := range in {
			c.watched.Add(1)
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// natsServerCPU is the CPU time of the local nats-server process, or -1.
func natsServerCPU() time.Duration {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "nats-server" {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		// Fields after the command (which ends with ')'): utime is the
		// 14th field of the line, stime the 15th, in clock ticks (100/s).
		_, rest, _ := strings.Cut(string(stat), ") ")
		f := strings.Fields(rest)
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		return time.Duration(u+s) * 10 * time.Millisecond
	}
	return -1
}

// measure runs b.N seconds of a settled cluster and reports the rates.
func measure(b *testing.B, reqs func() int64, extra func(elapsed time.Duration)) {
	b.Helper()
	r0, c0, s0 := reqs(), processCPU(), natsServerCPU()
	start := time.Now()
	b.ResetTimer()
	for range b.N {
		time.Sleep(time.Second)
	}
	b.StopTimer()
	el := time.Since(start)
	b.ReportMetric(float64(reqs()-r0)/el.Seconds(), "req/s")
	b.ReportMetric(float64((processCPU()-c0).Milliseconds())/el.Seconds(), "cpu-ms/s")
	if extra != nil {
		extra(el)
	} else if s0 >= 0 {
		b.ReportMetric(float64((natsServerCPU()-s0).Milliseconds())/el.Seconds(), "server-cpu-ms/s")
	}
	b.ReportMetric(0, "ns/op")
}

func BenchmarkSteadyStateNATS(b *testing.B) {
	var reqs, watched atomic.Int64
	name := "cost" + strconv.FormatInt(time.Now().UnixNano(), 36)
	js := connectJS(b, sharedNATS)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteKeyValue(ctx, Bucket(name))
	})
	streams := streamNames(costStreams)
	led := &ledger{}
	var ms []*member
	for i := range costMembers {
		id := "m" + strconv.Itoa(i)
		n, err := NewNATS(b.Context(), connectJS(b, sharedNATS), NATSConfig{Name: name, Member: id})
		if err != nil {
			b.Fatal(err)
		}
		n.kv = countingKV{kvBackend: n.kv, reqs: &reqs, watched: &watched}
		m := startMember(b, id, n, led, streams, 0)
		b.Cleanup(func() { _ = m.stop() })
		ms = append(ms, m)
	}
	waitFor(b, 2*time.Minute, 100*time.Millisecond, "settled", func() bool { return balancedCounts(ms, streams) })
	time.Sleep(10 * time.Second) // a whole TTL of steady state first
	w0 := watched.Load()
	measure(b, reqs.Load, nil)
	b.ReportMetric(float64(watched.Load()-w0)/float64(b.N), "watched/s")
}

func BenchmarkSteadyStateKafka(b *testing.B) {
	c, rc := newKfake(b, 1)
	name := "cost" + strconv.FormatInt(time.Now().UnixNano(), 36)
	streams := streamNames(costStreams)
	led := &ledger{}
	var ms []*member
	for i := range costMembers {
		id := "m" + strconv.Itoa(i)
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(cl.Close)
		k, err := NewKafka(cl, KafkaConfig{Name: name, Member: id})
		if err != nil {
			b.Fatal(err)
		}
		m := startMember(b, id, k, led, streams, 0)
		b.Cleanup(func() { _ = m.stop() })
		ms = append(ms, m)
	}
	waitFor(b, 2*time.Minute, 100*time.Millisecond, "settled", func() bool { return balancedCounts(ms, streams) })
	time.Sleep(10 * time.Second)
	hb0 := rc.counts[12].Load() // Heartbeat
	total := func() int64 {
		var n int64
		for i := range rc.counts {
			n += rc.counts[i].Load()
		}
		return n
	}
	measure(b, total, func(el time.Duration) {
		b.ReportMetric(float64(rc.counts[12].Load()-hb0)/el.Seconds(), "heartbeats/s")
	})
}

// BenchmarkHandover measures, on real brokers, how long a stream waits
// between its release by the old owner and the Assigned event of the new
// one: when a member stops cleanly (shutdown) and when it joins again
// (rebalance). 3 members, 30 streams, lease TTL 10s; each iteration is one
// stop and one join, 20 handovers. Reported: p50 and p99 in milliseconds.
//
//	go test -run '^$' -bench Handover -benchtime 2x ./cluster/
func BenchmarkHandover(b *testing.B) {
	for _, broker := range []string{"nats", "kafka"} {
		b.Run(broker, func(b *testing.B) {
			streams := streamNames(30)
			led := &ledger{}
			name := "ho" + strconv.FormatInt(time.Now().UnixNano(), 36)
			var newMember func(id string) Coordinator
			switch broker {
			case "nats":
				js := connectJS(b, sharedNATS)
				b.Cleanup(func() { _ = js.DeleteKeyValue(context.Background(), Bucket(name)) })
				newMember = func(id string) Coordinator {
					n, err := NewNATS(b.Context(), connectJS(b, sharedNATS), NATSConfig{Name: name, Member: id})
					if err != nil {
						b.Fatal(err)
					}
					return n
				}
			case "kafka":
				c, _ := newKfake(b, 3)
				newMember = func(id string) Coordinator {
					cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(cl.Close)
					k, err := NewKafka(cl, KafkaConfig{Name: name, Member: id})
					if err != nil {
						b.Fatal(err)
					}
					return k
				}
			}
			a := startMember(b, "a", newMember("a"), led, streams, 0)
			bb := startMember(b, "b", newMember("b"), led, streams, 0)
			b.Cleanup(func() { _ = a.stop(); _ = bb.stop() })
			var gaps []time.Duration
			b.ResetTimer()
			for i := range b.N {
				c := startMember(b, "c"+strconv.Itoa(i), newMember("c"+strconv.Itoa(i)), led, streams, 0)
				waitFor(b, time.Minute, 5*time.Millisecond, "10/10/10", func() bool { return settled([]*member{a, bb, c}, streams, 10, 10, 10) })
				if err := c.leave(time.Minute); err != nil {
					b.Fatal(err)
				}
				waitFor(b, time.Minute, 5*time.Millisecond, "15/15", func() bool { return settled([]*member{a, bb}, streams, 15, 15) })
			}
			b.StopTimer()
			by := map[string][]span{}
			for _, s := range led.all() {
				by[s.stream] = append(by[s.stream], s)
			}
			for _, ss := range by {
				slices.SortFunc(ss, func(x, y span) int { return x.start.Compare(y.start) })
				for i := 1; i < len(ss); i++ {
					if !ss[i-1].end.IsZero() && !ss[i-1].lost {
						gaps = append(gaps, ss[i].start.Sub(ss[i-1].end))
					}
				}
			}
			slices.Sort(gaps)
			if len(gaps) == 0 {
				b.Fatal("no handover")
			}
			pct := func(p float64) float64 {
				return float64(gaps[min(len(gaps)-1, int(p*float64(len(gaps))))].Microseconds()) / 1000
			}
			b.ReportMetric(float64(len(gaps)), "handovers")
			b.ReportMetric(pct(0.5), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
