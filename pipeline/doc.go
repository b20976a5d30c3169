// Package pipeline moves events from Restless Stream sources to a broker
// sink: parse → verify → dedupe → route → batch → write → acknowledge →
// checkpoint, in one ordered lane per stream.
//
// # Lanes
//
// Each stream of [Config.Streams] gets a lane; lanes run in parallel and
// share the one [Sink]. A lane is two goroutines, three with a positive
// [Config.CheckpointInterval]:
//
//   - the reader calls [Source.Next], turns each frame into a record (or a
//     rejection, or a duplicate) and hands it on through a buffer of
//     [Config.Buffer] events;
//   - the writer gathers up to [BatchConfig.MaxEvents] events, waiting at
//     most [BatchConfig.MaxWait] after the first, writes them, and saves
//     the checkpoint after each acknowledged batch;
//   - with a positive CheckpointInterval, a checkpointer saves beside the
//     writer instead.
//
// While the writer waits for a slow broker, or retries, the buffer fills
// and the reader stops calling Next: a slow broker slows reading, memory
// stays flat.
//
// # Memory
//
// What one stream holds, at most, from its source to its broker:
//
//   - the source's read-ahead: its reading goroutine queues up to 64 events
//     or 1 MiB for Next, whichever comes first (internal/stream's
//     DefaultQueue and DefaultQueueBytes; an event larger than 1 MiB
//     passes alone), and holds the one it is reading or waiting to queue;
//   - the lane: Buffer + MaxEvents + 1 events (the buffer, the batch being
//     written, the frame the reader holds while the buffer is full). Each
//     is at most [StreamConfig.MaxEventBytes] (a larger one is cut by the
//     source or rejected), so with the defaults the lane holds at most 1025
//     events: 1 MiB of 1 KiB events, and at worst 1025 events of 4 MiB
//     (4 GiB: lower MaxEventBytes or MaxEvents where that matters);
//   - the dedupe window: 28 bytes per remembered id, up to
//     [DedupeConfig.Size] ids (2.8 MB at the default 100000), outside the
//     Go heap where the system allows (see Deduplication), and the ids in
//     flight, at most one per event the lane holds.
//
// A lane costs what it holds. One that has read nothing holds about 9 KiB
// of heap (its channel of Buffer item pointers, its processor and
// checkpoint state; BenchmarkIdleLanes in bench/hotpath) and its
// goroutines; the items, the writer's batch slices and the dedupe window
// grow as events come, and the items go back to a shared pool after each
// batch.
//
// # Per event
//
// A frame whose source marked it TooLarge, or whose Data exceeds
// [StreamConfig.MaxEventBytes], is rejected as too_large. Otherwise it is
// decoded with client.DecodeEvent (an error: parse_error). Update events are
// verified per [StreamConfig.VerifyMode]: require rejects a missing
// (signature_missing) or wrong (signature_invalid) signature, optional
// rejects only a wrong one, off checks nothing. Error events are never
// signed: they always pass, unverified.
//
// An accepted event becomes an ingest.Record with Value = the frame's bytes
// unchanged (no copy), Dest = [StreamConfig.Destination], Key per
// [StreamConfig.KeyMode], MsgID = "<stream>:<event_id>" (JetStream's
// Nats-Msg-Id) and the headers restless-stream, restless-event-id,
// restless-event-type, restless-timestamp, restless-verified ("true" only
// when a signature was checked and matched) and content-type
// application/json; restless-event-id and restless-timestamp are left out
// when the event has none.
//
// A rejected event goes to [Config.DeadLetter] when set, as a record with
// the original bytes (for too_large the first MaxEventBytes bytes), key the
// stream name, no MsgID, and the headers restless-stream,
// restless-event-id (only when it could be read), restless-dlq-reason and
// restless-dlq-error. Without a dead-letter destination it is counted and
// dropped.
//
// # Deduplication
//
// Each stream remembers the event ids it published in a window bounded by
// [DedupeConfig.Size] ids and [DedupeConfig.TTL] age. An id enters the
// window only once the sink acknowledged its record, so a failed publish is
// retried, never mistaken for a duplicate. An id whose record is still in
// flight (read, not yet acknowledged) is a duplicate too. Events without an
// event_id pass through undeduplicated and are counted
// ([StreamObserver.NoEventID]).
//
// The window stores 128-bit fingerprints of the ids (two independently
// seeded hash/maphash values) with their acknowledgement second in a ring,
// and an open-addressing index: 28 bytes per id (20 in the ring, 8 in the
// index; BenchmarkWindow100k and BenchmarkWindow1M measure 28.0 bytes of
// resident memory per id). Ring and index live outside the Go heap, in
// memory from mmap where the system has it, so that they do not raise the
// garbage collector's heap target; they grow by doubling from 1024 ids up
// to Size as ids come, and are unmapped when the lane ends. A false
// duplicate needs a 128-bit collision: below 1e-22 over a year of events at
// 1000/s with a million ids remembered, where 64 bits would give about 1 in
// 600.
//
// Ages are kept in whole seconds: an id is remembered at least TTL after
// its acknowledgement, and forgotten at the latest when it is TTL rounded
// up to a whole second, plus one second, old. A TTL under a second acts as
// one second.
//
// # Writing, retries and order
//
// The writer hands the batch's records to [Sink.Write] in event order, and
// writes nothing newer until every record of the batch is acknowledged.
// When Write fails it retries after a jittered backoff ([Config.Retry]),
// for as long as the pipeline runs (a broker outage never drops events):
//
//   - when the error is an ingest.WriteErrors aligned with the records, only
//     the records that failed are written again, in their original order;
//   - any other error means the whole batch failed and is written again;
//   - a record whose error is an ingest.PermanentError (the broker will
//     never take it) is not retried: it is rejected as
//     [ReasonPublishRejected], counted, and handled, so it cannot stall
//     its stream. It is not dead-lettered: the broker would refuse the
//     same bytes there too.
//
// "Without reordering" means: the pipeline never hands a record to the sink
// before an earlier record of its stream, except that a record the sink
// already acknowledged is not sent again when an earlier one of the same
// Write failed. A sink that acknowledged record i+1 while record i failed
// would leave i+1 before i in the broker, and resending i+1 behind i would
// not undo that; so the sinks of this module never do: the Kafka sink stops
// a partition's requests at the first failed one, and the JetStream sink
// fences each record on the last message of its subject
// (Nats-Expected-Last-Subject-Sequence) and sends a subject's records one
// at a time, so that nothing after a lost record is stored. A Write then fails from the first failed record of each
// stream on, the rule resends exactly that suffix, and order is kept end to
// end.
//
// # Checkpoints
//
// A stream's checkpoint is the cursor of its last contiguous handled event:
// published and acknowledged, dead-lettered and acknowledged, dropped as a
// rejection, or a duplicate. The checkpoint never passes an event that was
// not acknowledged, even when later events of the same batch were.
//
// By default the writer saves the position after every acknowledged batch,
// before it writes the next one ([Config.CheckpointInterval] 0), and a last
// time when the lane ends. After a crash the stream resumes from its last
// saved checkpoint, so at most the batch that was in flight is read and
// written again: JetStream drops it by Nats-Msg-Id; on Kafka it may appear
// twice. A positive CheckpointInterval saves beside the lane instead, at
// most once per interval, and then a crash can also repeat what was
// acknowledged within the last interval. On start, a stream with no
// checkpoint opens its source with cursor "" and so starts from the
// source's configured since. A checkpoint that cannot be loaded (a corrupt
// file) fails the lane instead of silently starting over.
//
// Every save goes the same way: a failed Save is reported
// ([StreamObserver.CheckpointFailed]) and retried after the [Config.Retry]
// backoff. The writer retries until the save succeeds or the pipeline stops
// writing (it waits for its storage as for a broker, so that a crash still
// repeats at most one batch); the checkpointer until the lane ends; the
// last save until the pipeline stops writing or 10 seconds pass, after
// which the lane fails with the store's error.
//
// # Who decides the cursor
//
// Three layers touch an event's position; each decides one thing:
//
//   - the source says what the wire carries: the SSE id field (on
//     WebSocket, which has none, the event_id of the message), as
//     stream.Event.Cursor inside the source;
//   - the runner the sources share (internal/stream) resumes within the
//     process: it carries the last cursor forward into [ingest.Frame]'s
//     Cursor ("the position in effect after this event") and sends it on
//     each reconnect;
//   - the pipeline alone decides the checkpoint, in one function: an
//     event's position is its event_id when one could be read (decoded,
//     or read from a rejected event's bytes), else the frame's Cursor; a
//     duplicate leaves the checkpoint where it is (it repeats an older
//     position), and so does an event with neither. The position is
//     saved only once the event is handled, as above.
//
// # Stopping
//
// [Pipeline.Shutdown] stops reading, lets every lane write what it holds
// until the given context ends, saves the final checkpoints and returns
// once [Pipeline.Run] has. Nothing acknowledged is lost; nothing
// unacknowledged is checkpointed. A stream whose source returns
// ingest.ErrStreamEnded ends cleanly after handling what it read; a source
// that fails for good ends its lane with the error, which Run reports as a
// [*StreamError] once every lane has ended.
//
// # A changing set of lanes
//
// The lanes of [Config.Streams] are the first of a set that may change
// while the pipeline runs. [Pipeline.Start] adds a lane (or replaces one
// that ended on its own); [Pipeline.Stop] ends one and removes it, either
// with [Drain] (stop reading, write what the lane holds, save the
// checkpoint at the last handled event: the clean removal and handover)
// or with [Abort] (no write starts and no checkpoint is saved once Stop is
// called, none is under way when it returns: the fencing of a stream that
// now belongs to someone else). [Pipeline.Status] lists the set. The
// other lanes are not touched: their sources keep their connections.
// [Pipeline.Hold] keeps Run from returning between a Stop and the Start
// that replaces it, and [Config.KeepRunning] keeps it running with no lane
// at all, for a set filled later.
//
// # Metrics
//
// The pipeline reports every outcome to an [Observer]: received,
// published, duplicate, no event id, rejected by reason, publish latency,
// failed writes, event lag (now − meta.timestamp) and checkpoints.
package pipeline
