// Package testenv decides what a test does when something it needs from
// the machine is missing: a broker (the NATS server every machine runs on
// 127.0.0.1:4222) or a tool (kcat). Outside CI the test is skipped, so that
// a laptop without them can still run the rest; under CI (CI=true), whose
// setup installs and starts them, it fails, so that CI never passes by
// skipping what it was meant to run.
package testenv

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// CI reports whether the tests run under CI (CI=true), where nothing a test
// needs may be missing.
func CI() bool { return os.Getenv("CI") == "true" }

// Require stops tb when err says that what (a broker, a tool) is missing:
// it fails under CI and skips otherwise. A nil err does nothing.
func Require(tb testing.TB, what string, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if CI() {
		tb.Fatalf("%s is missing, and under CI=true nothing may be: %v", what, err)
		return
	}
	tb.Skipf("%s is missing (CI runs this test): %v", what, err)
}

// Have reports whether what is there (err is nil), for a test that falls
// back to a lesser setup without it. Under CI a missing what fails tb
// instead; otherwise the fallback is logged.
func Have(tb testing.TB, what string, err error) bool {
	tb.Helper()
	if err == nil {
		return true
	}
	if CI() {
		tb.Fatalf("%s is missing, and under CI=true nothing may be: %v", what, err)
		return false
	}
	tb.Logf("%s is missing, the test runs without it: %v", what, err)
	return false
}

// NATSAddr is where the shared NATS server with JetStream listens.
const NATSAddr = "127.0.0.1:4222"

// NATSURL is the URL of the shared NATS server.
const NATSURL = "nats://" + NATSAddr

// WhatNATS names the shared NATS server in messages.
const WhatNATS = "the NATS server with JetStream on " + NATSAddr

// DialNATS returns nil when the shared NATS server accepts a connection.
func DialNATS() error {
	c, err := net.DialTimeout("tcp", NATSAddr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// NATS returns the URL of the shared NATS server, after Require that it
// listens.
func NATS(tb testing.TB) string {
	tb.Helper()
	Require(tb, WhatNATS, DialNATS())
	return NATSURL
}

// Tool returns the path of the command name, after Require that it is
// installed.
func Tool(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	Require(tb, name+" (apt-get install "+name+")", err)
	return path
}
