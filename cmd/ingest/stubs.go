package main

import "context"

func cmdDemo(ctx context.Context, e *env, args []string) error { return usagef("demo: not built yet") }
func cmdRun(ctx context.Context, e *env, args []string) error  { return usagef("run: not built yet") }
func cmdEmulate(ctx context.Context, e *env, args []string) error {
	return usagef("emulate: not built yet")
}
func cmdStreams(ctx context.Context, e *env, args []string) error {
	return usagef("streams: not built yet")
}
