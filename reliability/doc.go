// Package reliability proves the delivery guarantees of INGEST.md against the
// real `ingest` binary. It holds no product code: its tests build cmd/ingest
// once, run it as a subprocess with a generated configuration against an
// in-process emulator (whose fault switches break the upstream on purpose) and
// real brokers (JetStream on 127.0.0.1:4222 or an embedded nats-server, kfake
// for Kafka, the file sink), then read back what landed and count what was
// lost and what was duplicated.
//
// Scenarios, one test each, runnable alone with -run:
//
//	TestUpstreamDrops         connections cut at random points, mid-event too, SSE and WebSocket
//	TestCrashJetStream        kill -9 under load, restart from the file checkpoint: exactly once
//	TestCrashKafka            the same into Kafka: at least once, repeats within one batch per kill
//	TestOutageNATS            the NATS server stopped and started again while events flow
//	TestOutageKafka           the Kafka broker stopped and started again while events flow
//	TestUpstreamMisbehaviour  401, 403, 404, 429, 500 storms, 204, wrong content type, stalls, drip, 64 MiB line, gzip
//	TestBadEvents             every kind of bad event, counted by reason and dead-lettered
//	TestBadConfiguration      `ingest check` on the classic mistakes; FuzzCheck over the loader
//	TestSecrets               no secret in logs, errors, check output or metrics
//	TestSoak                  an hour-equivalent of events with periodic faults
//	TestClusterJetStream      3-node JetStream cluster, replicas 3: stream and meta leaders stopped under load
//	TestClusterKafka          3-broker kfake cluster: partition leaders moved, NOT_LEADER_OR_FOLLOWER, timeouts
//
// Every test scans all output it sees for the secrets of the suite, so the
// secrets scenario covers the others as well.
//
// The default run (`go test ./reliability/`) is a shortened version of each
// scenario and takes a few minutes; INGEST_RELIABILITY=full runs the numbers
// of the reliability issue (100 drops, 10 kills, a 10 s outage, a longer soak,
// 10 leader-change cycles per cluster).
// -reliability.report=FILE (or INGEST_RELIABILITY_REPORT=FILE) writes the
// results table as Markdown, and FILE.json beside it, for RELIABILITY.md.
package reliability
