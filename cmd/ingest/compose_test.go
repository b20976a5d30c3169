package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// repoRoot is the module root, two levels above this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestComposeFile loads docker-compose.yml with the compose-spec loader (as
// `docker compose config` would) and checks its services, images, ports,
// healthchecks and the configuration files it mounts, which must pass check.
func TestComposeFile(t *testing.T) {
	root := repoRoot(t)
	details := types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml")}},
		Environment: types.Mapping{},
	}
	project, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("restless-ingest", true)
		o.SkipResolveEnvironment = false
	})
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	want := map[string]struct {
		image string
		port  uint32 // a published port, 0 = none required
	}{
		"emulator":     {"restless-ingest:local", 8787},
		"nats":         {"nats:", 4222},
		"kafka":        {"apache/kafka:", 9094},
		"ingest-nats":  {"restless-ingest:local", 9464},
		"ingest-kafka": {"restless-ingest:local", 9464},
	}
	for name, w := range want {
		svc, ok := project.Services[name]
		if !ok {
			t.Errorf("service %s missing", name)
			continue
		}
		if !strings.HasPrefix(svc.Image, w.image) {
			t.Errorf("%s: image %q, want %s…", name, svc.Image, w.image)
		}
		if svc.HealthCheck == nil || len(svc.HealthCheck.Test) == 0 {
			t.Errorf("%s: no healthcheck", name)
		}
		found := false
		for _, p := range svc.Ports {
			found = found || p.Target == w.port
		}
		if !found {
			t.Errorf("%s: port %d not published (ports %+v)", name, w.port, svc.Ports)
		}
	}
	if cmd := project.Services["nats"].Command; !slices.Contains(cmd, "-js") {
		t.Errorf("nats runs without JetStream: %v", cmd)
	}
	if env := project.Services["kafka"].Environment; env["KAFKA_PROCESS_ROLES"] == nil || !strings.Contains(*env["KAFKA_PROCESS_ROLES"], "controller") {
		t.Errorf("kafka is not in KRaft mode (KAFKA_PROCESS_ROLES %v)", env["KAFKA_PROCESS_ROLES"])
	}
	for _, name := range []string{"ingest-nats", "ingest-kafka"} {
		svc := project.Services[name]
		for dep, cond := range map[string]string{"emulator": "service_healthy"} {
			if d, ok := svc.DependsOn[dep]; !ok || d.Condition != cond {
				t.Errorf("%s: depends_on %s %s missing", name, dep, cond)
			}
		}
		// The -c file the command names is mounted from configs/, and passes check.
		i := slices.Index(svc.Command, "-c")
		if i < 0 || i+1 >= len(svc.Command) {
			t.Errorf("%s: command %v has no -c FILE", name, svc.Command)
			continue
		}
		target := svc.Command[i+1]
		var source string
		for _, v := range svc.Volumes {
			if v.Target == target {
				source = v.Source
			}
		}
		if source == "" {
			t.Errorf("%s: %s is not mounted", name, target)
			continue
		}
		if _, err := os.Stat(source); err != nil {
			t.Errorf("%s: mounted file: %v", name, err)
			continue
		}
		t.Setenv("RESTLESS_API_KEY", "rs_compose")
		t.Setenv("RESTLESS_DEMO_SECRET", "compose-secret")
		if _, err := LoadConfig(LoadOptions{File: source}); err != nil {
			t.Errorf("%s: %s does not pass check:\n%v", name, source, err)
		}
	}
}
