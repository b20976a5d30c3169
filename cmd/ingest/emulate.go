package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/restless-stream/ingest/emulator"
)

// cmdEmulate is `ingest emulate`: a local Restless Stream until stopped.
func cmdEmulate(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("emulate", e.stderr)
	addr := fs.String("addr", "127.0.0.1:8787", "listen `address`")
	state := fs.String("state", "", "state `FILE`: keeps managed streams, sessions, the generated API key and the demo and direct secrets across restarts")
	var keys setFlags
	fs.Var(&keys, "api-key", "accepted API `key` (repeatable; default RESTLESS_API_KEY, else one is generated and printed)")
	demo := fs.Bool("demo", true, "serve the demo API and the managed stream \"demo\" polling it every second")
	demoSecret := fs.String("demo-secret", "", "HMAC `secret` of the demo stream (default RESTLESS_DEMO_SECRET, else generated and printed)")
	publicURL := fs.String("public-url", "", "base `URL` of the sseUrl and websocketUrl handed out (default: from each request)")
	var allow setFlags
	fs.Var(&allow, "allow-upstream", "upstream `host[:port]` the pollers may fetch (repeatable or comma-separated; *.domain and port * allowed; default any, but never the emulator's own address)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(keys) == 0 {
		if k := os.Getenv(envAPIKey); k != "" {
			keys = append(keys, k)
		}
	}
	if *demoSecret == "" {
		*demoSecret = os.Getenv("RESTLESS_DEMO_SECRET")
	}
	var upstreams []string
	for _, a := range allow {
		for p := range strings.SplitSeq(a, ",") {
			if p = strings.TrimSpace(p); p != "" {
				upstreams = append(upstreams, p)
			}
		}
	}
	em, err := emulator.New(emulator.Options{
		AllowUpstream: upstreams,
		APIKeys:       keys,
		StateFile:     *state,
		DemoAPI:       *demo,
		DemoSecret:    *demoSecret,
		PublicURL:     *publicURL,
	})
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	if err := em.Start(*addr); err != nil {
		_ = em.Close()
		return fmt.Errorf("--addr %s: %w", *addr, err)
	}
	stop, _, release := signals()
	defer release()

	w := e.stdout
	fmt.Fprintf(w, "Restless Stream emulator listening on %s\n", em.URL())
	fmt.Fprintf(w, "  REST API:        %s/streams   (x-api-key)\n", em.URL())
	fmt.Fprintf(w, "  runtime (SSE):   %s/?streamId=ID\n", em.URL())
	fmt.Fprintf(w, "  runtime (WS):    %s/ws?streamId=ID\n", strings.Replace(em.URL(), "http", "ws", 1))
	if len(keys) == 0 {
		// A generated key is printed once so that a client can use it.
		fmt.Fprintf(w, "  API key:         %s   (generated; pass --api-key or RESTLESS_API_KEY to choose one)\n", em.APIKey())
	} else {
		fmt.Fprintf(w, "  API keys:        %d accepted\n", len(keys))
	}
	if *demo {
		fmt.Fprintf(w, "  demo stream:     %s/?streamId=%s  (a new order every second)\n", em.URL(), emulator.DemoStreamID)
		if os.Getenv("RESTLESS_DEMO_SECRET") == "" && !flagSet(fs, "demo-secret") {
			sec, _ := em.Secret(emulator.DemoStreamID)
			fmt.Fprintf(w, "  demo secret:     %s   (generated; pass --demo-secret or RESTLESS_DEMO_SECRET to choose one)\n", sec)
		}
	}
	fmt.Fprintln(w, "Ctrl-C stops.")
	select {
	case <-stop:
	case <-ctx.Done():
	}
	if err := em.Close(); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	return nil
}
