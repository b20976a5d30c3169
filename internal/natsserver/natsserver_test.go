package natsserver

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/restless-stream/ingest"
)

// TestStartErrors: a configuration Start cannot use fails with the field at
// fault, before anything listens.
func TestStartErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	tests := []struct {
		name  string
		cfg   Config
		field string
		want  string
	}{
		{"no dir", Config{}, "Dir", "required"},
		{"port out of range", Config{Dir: t.TempDir(), Port: 70000}, "Port", "not a port"},
		{"negative ready timeout", Config{Dir: t.TempDir(), ReadyTimeout: -time.Second}, "ReadyTimeout", "negative"},
		{"port in use", Config{Dir: t.TempDir(), Port: taken}, "Port", "cannot listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := Start(tt.cfg)
			if err == nil {
				srv.Shutdown()
				t.Fatal("Start succeeded")
			}
			var fe *ingest.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start = %v, want a FieldError at %s containing %q", err, tt.field, tt.want)
			}
		})
	}
}

// TestRestartKeepsData: a server started again on the same directory and
// port serves what JetStream stored before, to a client that reconnected.
func TestRestartKeepsData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "js")
	srv, err := Start(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	port := srv.Port()
	if want := "nats://127.0.0.1:"; !strings.HasPrefix(srv.ClientURL(), want) || port == 0 {
		t.Fatalf("ClientURL %s, port %d", srv.ClientURL(), port)
	}
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEEP", Subjects: []string{"keep.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "keep.a", []byte("x")); err != nil {
		t.Fatal(err)
	}

	srv.Shutdown()
	srv.Shutdown() // a second call is harmless
	srv2, err := Start(Config{Dir: dir, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv2.Shutdown)
	st, err := js.Stream(ctx, "KEEP")
	for err != nil && ctx.Err() == nil { // the client reconnects on its own time
		time.Sleep(10 * time.Millisecond)
		st, err = js.Stream(ctx, "KEEP")
	}
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("stream holds %d messages after the restart, want 1", n)
	}
}
