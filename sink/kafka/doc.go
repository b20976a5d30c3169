// Package kafka publishes records to Kafka with segmentio/kafka-go, through
// its public API only (kafka.Client's Produce, Metadata and CreateTopics).
//
// # Safe defaults
//
// The zero Config waits for every in-sync replica (RequireAll) and
// compresses with snappy. Write returns nil only when the broker
// acknowledged every record; otherwise it returns an ingest.WriteErrors
// whose entry i says why record i failed, so that only failed records are
// resent.
//
// # Sending at once
//
// The caller batches (the pipeline's batch.max_events and batch.max_wait),
// so Write sends what it is given at once: produce requests per partition,
// the partitions concurrently, with no timer of its own. (kafka-go's Writer,
// which this sink does not use, would hold a batch smaller than BatchSize
// for BatchTimeout again.) Partition counts and leaders come from metadata
// cached by kafka-go's Transport for up to 6s; an error that says a leader
// moved or a broker is gone makes the next request fetch it afresh.
//
// # Sizes
//
// Config.BatchBytes bounds each produce request's record batch as Kafka's
// message format v2 encodes it before compression: a 61-byte header, and
// per record its key, value and headers with their lengths, plus at most 16
// bytes of attributes and timestamp and offset deltas. With the default of
// 1 MiB a batch stays within a broker's default message.max.bytes even
// uncompressed.
//
// # Keys and partitions
//
// Record.Key is the message key (the pipeline sets it per sink.kafka.key).
// Partitions are chosen with murmur2 as the Java client does, so equal keys
// land in one partition, in order, and agree with Java and librdkafka
// producers. A nil key goes to a random partition.
//
// # Topics
//
// Topics are not created by producing (auto-creation is off). A record for a
// missing topic fails with an error naming the topic. With
// Config.CreateTopics, missing topics are created with Config.Partitions and
// Config.ReplicationFactor, on first use or up front with EnsureTopics.
//
// # Repeats
//
// kafka-go has no idempotent producer (segmentio/kafka-go issue #233). A
// batch that is retried after its acknowledgement was lost (a timeout, a
// broker failover) can be stored twice. Consumers that must not see a record
// twice drop repeats by the restless-event-id header (with restless-stream,
// or the key in the default key mode): a repeat carries the same headers and
// value as the original and lands in the same partition, after it. Why the
// sink stays on kafka-go rather than a client with an idempotent producer is
// written down, with measurements, in docs/decisions/0001-kafka-client.md.
//
// # Compression
//
// Batches are compressed with snappy by default, or gzip, lz4, zstd or not
// at all, with kafka-go's codecs. kafka-go keeps one codec per algorithm
// for the whole process, and the sink never changes them. Its snappy codec
// encodes with klauspost/s2's slower "better" mode unless the program sets
// compress.SnappyCodec.Compression to snappy.FasterCompression (standard
// snappy speed, as librdkafka and the Java client), once, before any Kafka
// traffic; the daemon does. The output is plain snappy either way.
//
// # Closing
//
// Close follows the contract of ingest.ErrClosed: it stops taking Writes,
// waits for those in progress (cancelling them when its context ends first)
// and closes the connections.
//
// # Headers
//
// Record headers become Kafka headers with the same names, values and
// order. Record.MsgID is not sent: Kafka has no broker-side duplicate
// detection to feed.
package kafka
