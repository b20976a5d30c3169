// Package validate checks the deployment files offline: the Helm chart (helm
// lint, helm template, every manifest decoded strictly with the Kubernetes API
// types, its configuration passed through the real `ingest check`), the
// Prometheus alerts (promtool) and the Grafana dashboard, whose every metric
// must exist in a running daemon's /metrics.
//
// It is a module of its own so that Helm and Prometheus stay out of the
// product's go.mod:
//
//	cd deploy/validate && go test -count=1 ./...
package validate
