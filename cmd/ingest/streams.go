package main

import "context"

func cmdStreams(ctx context.Context, e *env, args []string) error {
	return usagef("streams: not built yet")
}
