// Package hotpath holds the benchmark of the event hot path through the
// public pipeline API: 1 KiB signed events from an in-memory source through a
// lane (decode, verify, dedupe, record, batch) into a sink that acknowledges
// at once. Run it on one core:
//
//	go test -run '^$' -bench . -benchmem -cpu 1 ./bench/hotpath
package hotpath
