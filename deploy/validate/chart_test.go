package validate

import (
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// The values examples, each linted, rendered and checked.
func examples(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"nats.yaml", "kafka.yaml", "servicemonitor.yaml", "cluster-nats.yaml", "cluster-kafka.yaml"} {
		if !slices.Contains(files, filepath.Join(chartDir, "examples", want)) {
			t.Errorf("examples/%s is missing", want)
		}
	}
	return files
}

func helm(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return run(chartDir, helmBinary(t), nil, args...)
}

func TestHelmLint(t *testing.T) {
	for _, ex := range examples(t) {
		t.Run(filepath.Base(ex), func(t *testing.T) {
			out, errOut, err := helm(t, "lint", "--strict", chartDir, "-f", ex)
			if err != nil || !strings.Contains(out, "0 chart(s) failed") {
				t.Fatalf("helm lint --strict -f %s: %v\n%s%s", filepath.Base(ex), err, out, errOut)
			}
		})
	}
}

// TestHelmLintWithoutValues: the chart alone does not install; lint says which
// values are missing.
func TestHelmLintWithoutValues(t *testing.T) {
	out, errOut, err := helm(t, "lint", chartDir)
	if err == nil {
		t.Fatalf("helm lint without values passed:\n%s", out)
	}
	for _, key := range []string{"/secrets/apiKey/name", "/config/streams"} {
		if !strings.Contains(out+errOut, key) {
			t.Errorf("helm lint without values does not name %s:\n%s%s", key, out, errOut)
		}
	}
}

// rendered is one values example's manifests, each decoded strictly.
type rendered struct {
	configMap      *corev1.ConfigMap
	service        *corev1.Service
	serviceAccount *corev1.ServiceAccount
	statefulSet    *appsv1.StatefulSet
	pdb            *policyv1.PodDisruptionBudget
	serviceMonitor *monitoringv1.ServiceMonitor
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// decodeStrict decodes one manifest into its API type; an unknown or
// duplicated field is an error.
func decodeStrict[T any](doc []byte) (*T, error) {
	v := new(T)
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		return nil, err
	}
	return v, nil
}

func decodeManifests(t *testing.T, out string) rendered {
	t.Helper()
	var r rendered
	seen := map[string]bool{}
	for _, doc := range docSep.Split(out, -1) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, doc)
		}
		if tm.Kind == "" {
			if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(doc, "")) != "" {
				t.Errorf("a manifest without kind:\n%s", doc)
			}
			continue
		}
		if seen[tm.Kind] {
			t.Errorf("two manifests of kind %s", tm.Kind)
		}
		seen[tm.Kind] = true
		var err error
		switch gk := tm.APIVersion + " " + tm.Kind; gk {
		case "v1 ConfigMap":
			r.configMap, err = decodeStrict[corev1.ConfigMap]([]byte(doc))
		case "v1 Service":
			r.service, err = decodeStrict[corev1.Service]([]byte(doc))
		case "v1 ServiceAccount":
			r.serviceAccount, err = decodeStrict[corev1.ServiceAccount]([]byte(doc))
		case "apps/v1 StatefulSet":
			r.statefulSet, err = decodeStrict[appsv1.StatefulSet]([]byte(doc))
		case "policy/v1 PodDisruptionBudget":
			r.pdb, err = decodeStrict[policyv1.PodDisruptionBudget]([]byte(doc))
		case "monitoring.coreos.com/v1 ServiceMonitor":
			r.serviceMonitor, err = decodeStrict[monitoringv1.ServiceMonitor]([]byte(doc))
		default:
			// A Secret in particular: the chart never holds a secret value.
			t.Errorf("unexpected manifest %s", gk)
		}
		if err != nil {
			t.Errorf("%s %s does not decode strictly: %v\n%s", tm.APIVersion, tm.Kind, err, doc)
		}
	}
	if r.configMap == nil || r.service == nil || r.serviceAccount == nil || r.statefulSet == nil || r.pdb == nil {
		t.Fatalf("missing manifests: got %v", seen)
	}
	return r
}

// exampleValues is what the checks need of a values example.
type exampleValues struct {
	Replicas *int32           `json:"replicas"`
	Affinity *corev1.Affinity `json:"affinity"`
	Cluster  struct {
		Enabled  bool   `json:"enabled"`
		Name     string `json:"name"`
		LeaseTTL string `json:"leaseTTL"`
	} `json:"cluster"`
	Secrets map[string]struct {
		Name string `json:"name"`
		Key  string `json:"key"`
	} `json:"secrets"`
	ExtraEnv []corev1.EnvVar `json:"extraEnv"`
	Config   struct {
		Streams []struct {
			Verify struct {
				SecretRefs []struct {
					Name string `json:"name"`
					Key  string `json:"key"`
				} `json:"secretRefs"`
			} `json:"verify"`
		} `json:"streams"`
	} `json:"config"`
	Metrics struct {
		ServiceMonitor struct {
			Enabled bool `json:"enabled"`
		} `json:"serviceMonitor"`
	} `json:"metrics"`
	Persistence *struct {
		Enabled bool `json:"enabled"`
	} `json:"persistence"`
}

// daemonConfig is what the checks read of the rendered configuration.
type daemonConfig struct {
	Streams []struct {
		Name   string `json:"name"`
		Verify struct {
			Secrets []string `json:"secrets"`
		} `json:"verify"`
	} `json:"streams"`
	Pipeline struct {
		Batch struct {
			MaxEvents int `json:"max_events"`
		} `json:"batch"`
	} `json:"pipeline"`
	Checkpoint struct {
		Type       string `json:"type"`
		Dir        string `json:"dir"`
		KafkaTopic string `json:"kafka_topic"`
	} `json:"checkpoint"`
	Sink struct {
		Type string `json:"type"`
	} `json:"sink"`
	Cluster struct {
		Enabled  bool   `json:"enabled"`
		Name     string `json:"name"`
		Member   string `json:"member"`
		LeaseTTL string `json:"lease_ttl"`
	} `json:"cluster"`
	ShutdownTimeout string `json:"shutdown_timeout"`
	HTTP            struct {
		Addr string `json:"addr"`
	} `json:"http"`
}

func TestHelmTemplate(t *testing.T) {
	for _, ex := range examples(t) {
		t.Run(filepath.Base(ex), func(t *testing.T) { checkRendered(t, ex) })
	}
}

// TestChartAccepts: values at the edge of what the chart refuses render, and
// their configuration passes the daemon's own check.
func TestChartAccepts(t *testing.T) {
	ex := func(name string) string { return filepath.Join(chartDir, "examples", name) }
	cases := []struct{ name, values, overlay string }{
		{"cluster mode with one replica", ex("cluster-nats.yaml"), "replicas: 1"},
		{"shortest lease_ttl", ex("cluster-nats.yaml"), "cluster: {leaseTTL: 1s}"},
		{"longest lease_ttl", ex("cluster-nats.yaml"), "cluster: {leaseTTL: 10m}"},
		{"shortest Kafka lease_ttl", ex("cluster-kafka.yaml"), "cluster: {leaseTTL: 6s}"},
		{"lease_ttl of several units", ex("cluster-kafka.yaml"), "cluster: {leaseTTL: 1m30s}"},
		{"grace period one second above shutdown_timeout", ex("cluster-nats.yaml"), "terminationGracePeriodSeconds: 31"},
		{"kafka checkpoint with one replica", ex("kafka.yaml"), "config: {checkpoint: {type: kafka, kafka_topic: ingest.checkpoints}}"},
		{"five replicas", ex("cluster-kafka.yaml"), "replicas: 5"},
		{"own affinity", ex("cluster-nats.yaml"), "affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: pool, operator: In, values: [ingest]}]}]}}}"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			overlay := filepath.Join(t.TempDir(), "overlay.yaml")
			if err := os.WriteFile(overlay, []byte(c.overlay+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			checkRendered(t, c.values, overlay)
		})
	}
}

// checkRendered renders the chart with the values files, later files over
// earlier ones, and checks every manifest and the configuration.
func checkRendered(t *testing.T, files ...string) {
	t.Helper()
	args := []string{"template", "ingest", chartDir, "--namespace", "data"}
	var vals exampleValues
	for _, f := range files {
		args = append(args, "-f", f)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Decoding into the same value merges mappings as Helm does here.
		if err := yaml.Unmarshal(b, &vals); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm %v: %v\n%s", args, err, errOut)
	}
	r := decodeManifests(t, out)
	cfgText, cfg := renderedConfig(t, r)
	checkWorkload(t, r, cfg)
	checkCluster(t, r, cfg, vals)
	checkSecrets(t, r, cfgText, vals)
	checkMonitoring(t, r, vals)
	checkConfigPassesIngestCheck(t, cfgText)
}

// renderedConfig returns the configuration file the pod runs with.
func renderedConfig(t *testing.T, r rendered) (string, daemonConfig) {
	t.Helper()
	c := r.statefulSet.Spec.Template.Spec.Containers
	if len(c) != 1 {
		t.Fatalf("%d containers, want 1", len(c))
	}
	args := c[0].Args
	if len(args) != 3 || args[0] != "run" || args[1] != "-c" {
		t.Fatalf("container args %q, want run -c FILE", args)
	}
	var mountedFrom string
	for _, m := range c[0].VolumeMounts {
		if m.MountPath == path.Dir(args[2]) {
			mountedFrom = m.Name
		}
	}
	var cmName string
	for _, v := range r.statefulSet.Spec.Template.Spec.Volumes {
		if v.Name == mountedFrom && v.ConfigMap != nil {
			cmName = v.ConfigMap.Name
		}
	}
	if cmName != r.configMap.Name {
		t.Fatalf("%s is not mounted from the ConfigMap %s", args[2], r.configMap.Name)
	}
	text, ok := r.configMap.Data[path.Base(args[2])]
	if !ok {
		t.Fatalf("the ConfigMap has no key %s", path.Base(args[2]))
	}
	var cfg daemonConfig
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatalf("config: %v\n%s", err, text)
	}
	return text, cfg
}

func labelsMatch(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func checkWorkload(t *testing.T, r rendered, cfg daemonConfig) {
	sts := r.statefulSet
	pod := sts.Spec.Template.Spec
	c := pod.Containers[0]

	podLabels := sts.Spec.Template.Labels
	if !labelsMatch(sts.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("StatefulSet selector %v does not match its pods %v", sts.Spec.Selector.MatchLabels, podLabels)
	}
	if sts.Spec.ServiceName != r.service.Name || r.service.Spec.ClusterIP != "None" {
		t.Errorf("serviceName %q, Service %q with clusterIP %q: want the headless Service", sts.Spec.ServiceName, r.service.Name, r.service.Spec.ClusterIP)
	}
	if !labelsMatch(r.service.Spec.Selector, podLabels) {
		t.Errorf("Service selector %v does not match the pods %v", r.service.Spec.Selector, podLabels)
	}

	// The environment: Service links off (they would add INGEST_* variables
	// for a Service named ingest), no INGEST_ variable of our own.
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		t.Error("enableServiceLinks is not false")
	}
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "INGEST_") {
			t.Errorf("env %s: the daemon reads INGEST_ variables as configuration keys", e.Name)
		}
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token it does not use")
	}

	// Drain: the grace period covers 2 × max_events + 64 events per stream at
	// 28.4k events/s (BENCHMARKS.md, the slowest end-to-end run), plus 10 s.
	maxEvents := cfg.Pipeline.Batch.MaxEvents
	if maxEvents == 0 {
		maxEvents = 512
	}
	events := len(cfg.Streams) * (2*maxEvents + 64)
	drain := int64((events+28399)/28400 + 10)
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g < drain {
		t.Errorf("terminationGracePeriodSeconds %v is shorter than the drain (%ds)", g, drain)
	}
	// And it exceeds shutdown_timeout (the daemon's default 30s when unset):
	// the kubelet's SIGKILL never cuts a handover or drain the daemon would finish.
	shutdown := 30 * time.Second
	if cfg.ShutdownTimeout != "" {
		var err error
		if shutdown, err = time.ParseDuration(cfg.ShutdownTimeout); err != nil {
			t.Errorf("shutdown_timeout %q: %v", cfg.ShutdownTimeout, err)
		}
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= shutdown {
		t.Errorf("terminationGracePeriodSeconds %v is not above shutdown_timeout %v", g, shutdown)
	}

	// Rolling updates one pod at a time, each new pod ready before the next
	// one stops.
	us := sts.Spec.UpdateStrategy
	if us.Type != appsv1.RollingUpdateStatefulSetStrategyType || us.RollingUpdate == nil ||
		us.RollingUpdate.MaxUnavailable == nil || us.RollingUpdate.MaxUnavailable.IntValue() != 1 {
		t.Errorf("updateStrategy %+v, want RollingUpdate with maxUnavailable 1", us)
	}
	if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("podManagementPolicy %q, want Parallel", sts.Spec.PodManagementPolicy)
	}

	// Security: non-root, no privilege, read-only root filesystem.
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("pod securityContext %+v does not run as non-root", psc)
	} else if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod seccompProfile %+v, want RuntimeDefault", psc.SeccompProfile)
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Error("container has no securityContext")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("container root filesystem is not read-only")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("container allows privilege escalation")
	case sc.Privileged != nil && *sc.Privileged:
		t.Error("container is privileged")
	case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL"):
		t.Error("container does not drop ALL capabilities")
	}

	// The metrics port: the one the daemon listens on, named for the probes,
	// the Service and the ServiceMonitor.
	_, port, err := net.SplitHostPort(cfg.HTTP.Addr)
	if err != nil {
		t.Fatalf("http.addr %q: %v", cfg.HTTP.Addr, err)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "metrics" || strconv.Itoa(int(c.Ports[0].ContainerPort)) != port {
		t.Errorf("container ports %+v, want metrics on %s (http.addr %s)", c.Ports, port, cfg.HTTP.Addr)
	}
	if len(r.service.Spec.Ports) != 1 || r.service.Spec.Ports[0].TargetPort.String() != "metrics" {
		t.Errorf("Service ports %+v, want one to the metrics port", r.service.Spec.Ports)
	}
	probe := func(name string, p *corev1.Probe, want string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || p.HTTPGet.Port.String() != "metrics" {
			t.Errorf("%s probe %+v, want GET %s on metrics", name, p, want)
		}
	}
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("readiness", c.ReadinessProbe, "/readyz")
	probe("startup", c.StartupProbe, "/healthz")

	// Resources: requests and limits for CPU and memory, requests ≤ limits.
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okR := c.Resources.Requests[res]
		lim, okL := c.Resources.Limits[res]
		if !okR || !okL {
			t.Errorf("%s: request or limit missing (%+v)", res, c.Resources)
		} else if req.Cmp(lim) > 0 {
			t.Errorf("%s: request %s above limit %s", res, req.String(), lim.String())
		}
	}

	// Writable storage: only the data volume, at checkpoint.dir, only with the
	// file checkpoint.
	file := cfg.Checkpoint.Type == "file"
	var dataMounted bool
	for _, m := range c.VolumeMounts {
		if m.ReadOnly {
			continue
		}
		if m.Name != "data" || !file || m.MountPath != cfg.Checkpoint.Dir {
			t.Errorf("writable mount %s at %s (checkpoint %s at %q)", m.Name, m.MountPath, cfg.Checkpoint.Type, cfg.Checkpoint.Dir)
		}
		dataMounted = true
	}
	if file && !dataMounted {
		t.Errorf("checkpoint.type file, but nothing is mounted at %s", cfg.Checkpoint.Dir)
	}
	var claimed bool
	for _, pvc := range sts.Spec.VolumeClaimTemplates {
		claimed = claimed || pvc.Name == "data"
	}
	var podVolume bool
	for _, v := range pod.Volumes {
		podVolume = podVolume || v.Name == "data"
	}
	if file && claimed == podVolume {
		t.Errorf("file checkpoint: data volume from a claim %v and in the pod %v; want exactly one", claimed, podVolume)
	}
	if !file && (claimed || podVolume) {
		t.Errorf("checkpoint.type %s needs no data volume", cfg.Checkpoint.Type)
	}
	if file && (psc == nil || psc.FSGroup == nil) {
		t.Error("file checkpoint without fsGroup: the volume may not be writable by the daemon's user")
	}

	// The disruption budget: one pod at a time, the StatefulSet's pods.
	pdb := r.pdb.Spec
	if pdb.MaxUnavailable == nil || pdb.MaxUnavailable.IntValue() != 1 || pdb.Selector == nil || !labelsMatch(pdb.Selector.MatchLabels, podLabels) {
		t.Errorf("PodDisruptionBudget %+v, want maxUnavailable 1 over the pods", pdb)
	}
}

// checkCluster: replicas above 1 only in cluster mode; in cluster mode each pod
// is a member named after itself (the downward API), with a checkpoint store
// every replica reads and no volume of its own.
func checkCluster(t *testing.T, r rendered, cfg daemonConfig, vals exampleValues) {
	sts := r.statefulSet
	pod := sts.Spec.Template.Spec
	want := int32(1)
	if vals.Replicas != nil {
		want = *vals.Replicas
	}
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != want {
		t.Errorf("replicas %v, want %d", sts.Spec.Replicas, want)
	}
	if want > 1 && !cfg.Cluster.Enabled {
		t.Errorf("%d replicas without cluster.enabled: every replica would read every stream", want)
	}
	if vals.Cluster.Enabled != cfg.Cluster.Enabled {
		t.Fatalf("values cluster.enabled %v, rendered cluster.enabled %v", vals.Cluster.Enabled, cfg.Cluster.Enabled)
	}
	var podName *corev1.EnvVar
	for i, e := range pod.Containers[0].Env {
		if e.Name == "POD_NAME" {
			podName = &pod.Containers[0].Env[i]
		}
	}
	if !cfg.Cluster.Enabled {
		if cfg.Cluster != (daemonConfig{}).Cluster {
			t.Errorf("cluster mode off, yet the configuration has cluster %+v", cfg.Cluster)
		}
		return
	}
	if cfg.Cluster.Name != vals.Cluster.Name || cfg.Cluster.LeaseTTL != vals.Cluster.LeaseTTL {
		t.Errorf("cluster name %q lease_ttl %q, values say %q and %q", cfg.Cluster.Name, cfg.Cluster.LeaseTTL, vals.Cluster.Name, vals.Cluster.LeaseTTL)
	}
	// The member id is the pod's name: unique among the replicas and the
	// same after a restart.
	if cfg.Cluster.Member != "${POD_NAME}" {
		t.Errorf("cluster.member %q, want ${POD_NAME}", cfg.Cluster.Member)
	}
	if podName == nil || podName.Value != "" || podName.ValueFrom == nil || podName.ValueFrom.FieldRef == nil ||
		podName.ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("POD_NAME %+v, want the downward API's metadata.name", podName)
	}
	switch {
	case cfg.Checkpoint.Type == "nats_kv" && cfg.Sink.Type == "nats":
	case cfg.Checkpoint.Type == "kafka" && cfg.Sink.Type == "kafka":
		if cfg.Checkpoint.KafkaTopic == "" {
			t.Error("checkpoint.type kafka without kafka_topic")
		}
	default:
		t.Errorf("cluster mode with checkpoint %s and sink %s: want nats_kv with nats or kafka with kafka", cfg.Checkpoint.Type, cfg.Sink.Type)
	}
	if len(sts.Spec.VolumeClaimTemplates) > 0 {
		t.Error("cluster mode with a volume claim per pod: the replicas share their checkpoints through the broker")
	}
	if vals.Affinity != nil {
		// The values' own affinity replaces the default one.
		if !reflect.DeepEqual(pod.Affinity, vals.Affinity) {
			t.Errorf("affinity %+v, values say %+v", pod.Affinity, vals.Affinity)
		}
	} else if want > 1 {
		a := pod.Affinity
		if a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
			t.Errorf("%d replicas without pod anti-affinity: %+v", want, a)
		} else {
			term := a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
			if term.TopologyKey != "kubernetes.io/hostname" || term.LabelSelector == nil || !labelsMatch(term.LabelSelector.MatchLabels, sts.Spec.Template.Labels) {
				t.Errorf("anti-affinity term %+v does not spread the StatefulSet's pods over nodes", term)
			}
		}
	}
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// checkSecrets: no secret value in any manifest; every secret key of the
// configuration is a ${VAR} that the pod fills from a Secret; every Secret the
// values name is referenced.
func checkSecrets(t *testing.T, r rendered, cfgText string, vals exampleValues) {
	c := r.statefulSet.Spec.Template.Spec.Containers[0]
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	fromSecret := func(name string) bool {
		e, ok := env[name]
		return ok && e.Value == "" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
	}
	if !fromSecret("RESTLESS_API_KEY") {
		t.Errorf("RESTLESS_API_KEY is not read from a Secret: %+v", env["RESTLESS_API_KEY"])
	}
	// Every ${VAR} the configuration uses is set in the pod.
	for _, m := range varRef.FindAllStringSubmatch(cfgText, -1) {
		if _, ok := env[m[1]]; !ok {
			t.Errorf("the configuration uses ${%s}, which the pod does not set", m[1])
		}
	}
	// The configuration's secret keys hold only ${VAR} from a Secret.
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(cfgText), &cfg); err != nil {
		t.Fatal(err)
	}
	secretOnly := func(key string, v any) {
		s, _ := v.(string)
		m := varRef.FindStringSubmatch(s)
		if m == nil || m[0] != s || !fromSecret(m[1]) {
			t.Errorf("%s is %q: want ${VAR} read from a Secret", key, s)
		}
	}
	if restless, _ := cfg["restless"].(map[string]any); restless["api_key"] != nil {
		t.Errorf("restless.api_key is in the configuration: want RESTLESS_API_KEY from a Secret")
	}
	streams, _ := cfg["streams"].([]any)
	for i, s := range streams {
		v, _ := s.(map[string]any)["verify"].(map[string]any)
		secrets, _ := v["secrets"].([]any)
		for j, sec := range secrets {
			secretOnly(fmt.Sprintf("streams[%d].verify.secrets[%d]", i, j), sec)
		}
	}
	sink, _ := cfg["sink"].(map[string]any)
	if n, ok := sink["nats"].(map[string]any); ok && n["token"] != nil {
		secretOnly("sink.nats.token", n["token"])
	}
	if k, ok := sink["kafka"].(map[string]any); ok {
		if sasl, ok := k["sasl"].(map[string]any); ok && sasl["password"] != nil {
			secretOnly("sink.kafka.sasl.password", sasl["password"])
		}
	}

	// Every Secret the values name is read: as an environment variable or as
	// a mounted volume.
	refs := map[string]bool{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			refs[e.ValueFrom.SecretKeyRef.Name+"/"+e.ValueFrom.SecretKeyRef.Key] = true
		}
	}
	for _, v := range r.statefulSet.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			refs[v.Secret.SecretName+"/*"] = true
			for _, it := range v.Secret.Items {
				refs[v.Secret.SecretName+"/"+it.Key] = true
			}
		}
	}
	want := func(what, name, key string) {
		if name != "" && !refs[name+"/"+key] && !refs[name+"/*"] {
			t.Errorf("%s: Secret %s key %s is not referenced by the pod", what, name, key)
		}
	}
	for what, s := range vals.Secrets {
		want("secrets."+what, s.Name, s.Key)
	}
	for i, s := range vals.Config.Streams {
		for j, ref := range s.Verify.SecretRefs {
			want(fmt.Sprintf("config.streams[%d].verify.secretRefs[%d]", i, j), ref.Name, ref.Key)
		}
	}
	for _, e := range vals.ExtraEnv {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			want("extraEnv "+e.Name, e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
		}
	}
	// And the Secret volumes are read-only.
	for _, m := range c.VolumeMounts {
		for _, v := range r.statefulSet.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil && !m.ReadOnly {
				t.Errorf("Secret volume %s is mounted writable", m.Name)
			}
		}
	}
}

func checkMonitoring(t *testing.T, r rendered, vals exampleValues) {
	sm := r.serviceMonitor
	if vals.Metrics.ServiceMonitor.Enabled != (sm != nil) {
		t.Fatalf("metrics.serviceMonitor.enabled %v, ServiceMonitor rendered %v", vals.Metrics.ServiceMonitor.Enabled, sm != nil)
	}
	if sm == nil {
		return
	}
	if !labelsMatch(sm.Spec.Selector.MatchLabels, r.service.Labels) {
		t.Errorf("ServiceMonitor selector %v does not match the Service's labels %v", sm.Spec.Selector.MatchLabels, r.service.Labels)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v, want /metrics on the metrics port", sm.Spec.Endpoints)
	}
	// The alerts and the dashboard select job="restless-ingest".
	if job := r.service.Labels[sm.Spec.JobLabel]; job != "restless-ingest" {
		t.Errorf("ServiceMonitor jobLabel %q gives job %q, want restless-ingest", sm.Spec.JobLabel, job)
	}
}

// checkConfigPassesIngestCheck runs the real `ingest check -c` on the
// rendered configuration, with every ${VAR} set to a dummy, and checks that
// no dummy secret is printed.
func checkConfigPassesIngestCheck(t *testing.T, cfgText string) {
	dir := t.TempDir()
	cfgText = withMountedFiles(t, dir, cfgText)
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"RESTLESS_API_KEY": "rs_dummy_api_key_4f9a1c"}
	for _, m := range varRef.FindAllStringSubmatch(cfgText, -1) {
		vars[m[1]] = "dummy-" + strings.ToLower(m[1]) + "-7d3e"
	}
	out, errOut, err := run(dir, ingestBinary(t), cleanEnv(vars), "check", "-c", file)
	if err != nil {
		t.Fatalf("ingest check -c on the rendered configuration: %v\n%s%s\nconfiguration:\n%s", err, out, errOut, cfgText)
	}
	// The values of the daemon's secret keys are redacted (a header value such
	// as the kafka example's ${INVENTORY_TOKEN} is not one of them).
	for name, v := range vars {
		secret := name == "RESTLESS_API_KEY" || name == "NATS_TOKEN" || name == "KAFKA_SASL_PASSWORD" || strings.HasPrefix(name, "HMAC_SECRET_")
		if secret && strings.Contains(out+errOut, v) {
			t.Errorf("ingest check printed the value of %s", name)
		}
	}
}

// TestChartRefuses: wrong values fail at install, naming the key at fault.
func TestChartRefuses(t *testing.T) {
	base := filepath.Join(chartDir, "examples", "nats.yaml")
	kafka := filepath.Join(chartDir, "examples", "kafka.yaml")
	clusterNATS := filepath.Join(chartDir, "examples", "cluster-nats.yaml")
	clusterKafka := filepath.Join(chartDir, "examples", "cluster-kafka.yaml")
	cases := []struct {
		name   string
		values string
		set    []string
		want   []string
	}{
		{"two replicas without cluster mode", base, []string{"replicas=2"}, []string{"replicas: 2 needs cluster.enabled: true"}},
		{"three replicas, cluster mode off", clusterNATS, []string{"cluster.enabled=false"}, []string{"replicas: 3 needs cluster.enabled: true"}},
		{"cluster mode, file checkpoint", kafka, []string{"cluster.enabled=true"}, []string{"cluster.enabled: true needs a checkpoint store every replica reads", "config.checkpoint.type is file"}},
		{"replicas with the file checkpoint (a PVC each)", clusterKafka, []string{"config.checkpoint.type=file"}, []string{"config.checkpoint.type: file", "replicas: 3"}},
		{"replicas with an emptyDir file checkpoint", clusterKafka, []string{"config.checkpoint.type=file", "persistence.enabled=false"}, []string{"config.checkpoint.type: file"}},
		{"cluster mode, file sink", clusterNATS, []string{"config.sink.type=file"}, []string{"/config/sink/type"}},
		{"cluster mode, stdout sink", clusterKafka, []string{"config.sink.type=stdout"}, []string{"/config/sink/type"}},
		{"cluster mode, nats_kv with Kafka", clusterNATS, []string{"config.sink.type=kafka"}, []string{"config.checkpoint.type: nats_kv needs config.sink.type nats"}},
		{"cluster mode, kafka checkpoint with NATS", clusterKafka, []string{"config.sink.type=nats", "secrets.kafkaPassword.name=", "secrets.kafkaTLS.name=", "config.sink.kafka.sasl.mechanism="}, []string{"config.checkpoint.type: kafka needs config.sink.type kafka"}},
		{"kafka checkpoint with NATS, one replica", base, []string{"config.checkpoint.type=kafka"}, []string{"config.checkpoint.type: kafka needs config.sink.type kafka"}},
		{"cluster mode, nats_kv without JetStream", clusterNATS, []string{"config.sink.nats.jetstream=false"}, []string{"config.checkpoint.type: nats_kv needs", "jetstream true"}},
		{"bad cluster name", clusterNATS, []string{"cluster.name=Orders.EU"}, []string{"/cluster/name"}},
		{"empty cluster name", clusterNATS, []string{"cluster.name="}, []string{"/cluster/name"}},
		{"long cluster name", clusterNATS, []string{"cluster.name=" + strings.Repeat("a", 65)}, []string{"/cluster/name"}},
		{"cluster member set", clusterNATS, []string{"cluster.member=ingest-0"}, []string{"/cluster", "'member'"}},
		{"cluster in the daemon's config", clusterNATS, []string{"config.cluster.enabled=true"}, []string{"/config", "'cluster'"}},
		{"lease_ttl not a duration", clusterNATS, []string{"cluster.leaseTTL=10"}, []string{"/cluster/leaseTTL"}},
		{"lease_ttl zero", clusterNATS, []string{"cluster.leaseTTL=0s"}, []string{"cluster.leaseTTL: 0s is outside [1s, 10m]"}},
		{"lease_ttl below a second", clusterNATS, []string{"cluster.leaseTTL=999ms"}, []string{"cluster.leaseTTL: 999ms is outside [1s, 10m]"}},
		{"lease_ttl above ten minutes", clusterNATS, []string{"cluster.leaseTTL=10m1s"}, []string{"cluster.leaseTTL: 10m1s is outside [1s, 10m]"}},
		{"lease_ttl below Kafka's session timeout", clusterKafka, []string{"cluster.leaseTTL=5900ms"}, []string{"cluster.leaseTTL: 5900ms is below 6s"}},
		{"grace period not above shutdown_timeout", clusterNATS, []string{"config.shutdown_timeout=45s"}, []string{"terminationGracePeriodSeconds: 45 is not above config.shutdown_timeout (45s)"}},
		{"grace period not above the default shutdown_timeout", base, []string{"config.shutdown_timeout=null", "terminationGracePeriodSeconds=30"}, []string{"terminationGracePeriodSeconds: 30 is not above config.shutdown_timeout (30s)"}},
		{"shutdown_timeout not a duration", clusterNATS, []string{"config.shutdown_timeout=30"}, []string{"/config/shutdown_timeout"}},
		{"unknown checkpoint type", clusterNATS, []string{"config.checkpoint.type=redis"}, []string{"/config/checkpoint/type"}},
		{"bad checkpoint topic", clusterKafka, []string{"config.checkpoint.kafka_topic=a topic"}, []string{"/config/checkpoint/kafka_topic"}},
		{"inline HMAC secret", base, []string{"config.streams[0].verify.secrets[0]=s3cret"}, []string{"/config/streams/0/verify", "'secrets'"}},
		{"inline API key", base, []string{"config.restless.api_key=rs_s3cret"}, []string{"/config/restless", "'api_key'"}},
		{"inline NATS token", base, []string{"config.sink.nats.token=s3cret"}, []string{"/config/sink/nats", "'token'"}},
		{"inline Kafka password", kafka, []string{"config.sink.kafka.sasl.password=s3cret"}, []string{"/config/sink/kafka/sasl", "'password'"}},
		{"no API key Secret", base, []string{"secrets.apiKey.name="}, []string{"/secrets/apiKey/name"}},
		{"unknown transport", base, []string{"config.streams[0].transport=sse2"}, []string{"/config/streams/0/transport"}},
		{"two targets", base, []string{"config.streams[0].url=http://x"}, []string{"config.streams[0] (orders): stream_id and url are set"}},
		{"duplicate stream", base, []string{"config.streams[1].name=orders"}, []string{"config.streams[1].name", "duplicates"}},
		{"bad duration", base, []string{"config.streams[1].idle_timeout=45"}, []string{"/config/streams/1/idle_timeout"}},
		{"string for a number", base, []string{"config.pipeline.batch.max_events=abc"}, []string{"/config/pipeline/batch/max_events"}},
		{"nats_kv with Kafka", base, []string{"config.sink.type=kafka"}, []string{"config.checkpoint.type: nats_kv needs"}},
		{"memory checkpoint", base, []string{"config.checkpoint.type=memory"}, []string{"/config/checkpoint/type"}},
		{"embedded NATS", base, []string{"config.sink.nats.embedded=true"}, []string{"/config/sink/nats", "'embedded'"}},
		{"short grace period", kafka, []string{"terminationGracePeriodSeconds=5"}, []string{"terminationGracePeriodSeconds: 5 is shorter"}},
		{"INGEST_ in extraEnv", base, []string{"extraEnv[0].name=INGEST_SINK__TYPE", "extraEnv[0].value=kafka"}, []string{"extraEnv[0].name: INGEST_SINK__TYPE"}},
		{"SASL without password", kafka, []string{"secrets.kafkaPassword.name="}, []string{"secrets.kafkaPassword"}},
		{"unknown top-level key", base, []string{"replica=1"}, []string{"'replica'"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"template", "ingest", chartDir, "-f", c.values}
			for _, s := range c.set {
				args = append(args, "--set", s)
			}
			out, errOut, err := helm(t, args...)
			if err == nil {
				t.Fatalf("helm template %v passed:\n%s", c.set, out)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("helm template %v: the error does not say %q:\n%s", c.set, w, errOut)
				}
			}
		})
	}
}

// TestChartRefusesWithoutSchema: the cluster rules that the templates check
// themselves still refuse, naming the value, when the schema is skipped
// (helm --skip-schema-validation).
func TestChartRefusesWithoutSchema(t *testing.T) {
	clusterNATS := filepath.Join(chartDir, "examples", "cluster-nats.yaml")
	cases := []struct {
		set  []string
		want string
	}{
		{[]string{"cluster.name=Orders"}, `cluster.name: "Orders" must match [a-z0-9_-]+`},
		{[]string{"cluster.name=" + strings.Repeat("a", 65)}, "(at most 64 characters)"},
		{[]string{"cluster.leaseTTL=soon"}, `cluster.leaseTTL: "soon" is not a duration`},
		{[]string{"config.shutdown_timeout=1x"}, `config.shutdown_timeout: "1x" is not a duration`},
		{[]string{"config.checkpoint.type=file"}, "config.checkpoint.type: file"},
	}
	for _, c := range cases {
		args := []string{"template", "ingest", chartDir, "--skip-schema-validation", "-f", clusterNATS}
		for _, s := range c.set {
			args = append(args, "--set", s)
		}
		out, errOut, err := helm(t, args...)
		if err == nil {
			t.Errorf("helm template --skip-schema-validation %v passed:\n%s", c.set, out)
		} else if !strings.Contains(errOut, c.want) {
			t.Errorf("helm template --skip-schema-validation %v: the error does not say %q:\n%s", c.set, c.want, errOut)
		}
	}
}
