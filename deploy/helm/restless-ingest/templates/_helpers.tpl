{{/* Names and labels. */}}
{{- define "restless-ingest.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "restless-ingest.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "restless-ingest.selectorLabels" -}}
app.kubernetes.io/name: {{ include "restless-ingest.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "restless-ingest.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "restless-ingest.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: ingest
{{- end -}}

{{- define "restless-ingest.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "restless-ingest.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Paths inside the container. */}}
{{- define "restless-ingest.configDir" -}}/etc/restless-ingest/config{{- end -}}
{{- define "restless-ingest.checkpointDir" -}}/data/checkpoints{{- end -}}
{{- define "restless-ingest.natsCredsDir" -}}/etc/restless-ingest/nats-credentials{{- end -}}
{{- define "restless-ingest.natsTLSDir" -}}/etc/restless-ingest/nats-tls{{- end -}}
{{- define "restless-ingest.kafkaTLSDir" -}}/etc/restless-ingest/kafka-tls{{- end -}}

{{/* The environment variable that carries streams[i].verify.secretRefs[j]. */}}
{{- define "restless-ingest.hmacEnv" -}}
{{- printf "HMAC_SECRET_%d_%d" (index . 0) (index . 1) -}}
{{- end -}}

{{/* true when the file checkpoint needs the data volume. */}}
{{- define "restless-ingest.fileCheckpoint" -}}
{{- if eq .Values.config.checkpoint.type "file" -}}true{{- end -}}
{{- end -}}

{{/*
Checks that values.schema.json cannot express. Each failure names the value at
fault and what to do.
*/}}
{{- define "restless-ingest.validate" -}}
{{- $v := .Values -}}
{{- $sink := $v.config.sink.type -}}
{{- $cp := $v.config.checkpoint.type -}}
{{- $cluster := and $v.cluster $v.cluster.enabled -}}
{{- if and (gt (int $v.replicas) 1) (not $cluster) -}}
{{- fail (printf "replicas: %d needs cluster.enabled: true (cluster mode, the streams shared through the broker); without it every replica would read every stream. Set cluster.enabled: true or replicas: 1." (int $v.replicas)) -}}
{{- end -}}
{{- if and (eq $cp "nats_kv") (or (ne $sink "nats") (not $v.config.sink.nats.jetstream)) -}}
{{- fail (printf "config.checkpoint.type: nats_kv needs config.sink.type nats with config.sink.nats.jetstream true (sink.type is %s); use checkpoint.type %s with the %s sink." $sink (ternary "kafka" "file" (eq $sink "kafka")) $sink) -}}
{{- end -}}
{{- if and (eq $cp "kafka") (ne $sink "kafka") -}}
{{- fail (printf "config.checkpoint.type: kafka needs config.sink.type kafka (sink.type is %s); use checkpoint.type nats_kv with the NATS sink." $sink) -}}
{{- end -}}
{{- if and (eq $cp "file") (gt (int $v.replicas) 1) -}}
{{- fail (printf "config.checkpoint.type: file keeps each pod's checkpoints on its own volume, which the other replicas cannot read; with replicas: %d use nats_kv (NATS sink) or kafka (Kafka sink)." (int $v.replicas)) -}}
{{- end -}}
{{- if $cluster -}}
{{- if eq $cp "file" -}}
{{- fail "cluster.enabled: true needs a checkpoint store every replica reads; config.checkpoint.type is file (one volume per pod): use nats_kv with the NATS sink or kafka with the Kafka sink." -}}
{{- end -}}
{{- if not (regexMatch "^[a-z0-9_-]{1,64}$" (toString $v.cluster.name)) -}}
{{- fail (printf "cluster.name: %q must match [a-z0-9_-]+ (at most 64 characters)." (toString $v.cluster.name)) -}}
{{- end -}}
{{- $ttl := include "restless-ingest.seconds" (list "cluster.leaseTTL" $v.cluster.leaseTTL) | float64 -}}
{{- if or (lt $ttl 1.0) (gt $ttl 600.0) -}}
{{- fail (printf "cluster.leaseTTL: %s is outside [1s, 10m], the lease durations restless-ingest accepts." $v.cluster.leaseTTL) -}}
{{- end -}}
{{- if and (eq $cp "kafka") (lt $ttl 6.0) -}}
{{- fail (printf "cluster.leaseTTL: %s is below 6s, the shortest group session timeout Kafka brokers accept (group.min.session.timeout.ms); the kafka checkpoint's replicas could not join." $v.cluster.leaseTTL) -}}
{{- end -}}
{{- end -}}
{{- if and (ne $sink "nats") (or $v.secrets.natsToken.name $v.secrets.natsCredentials.name $v.secrets.natsTLS.name) -}}
{{- fail (printf "secrets.natsToken, secrets.natsCredentials and secrets.natsTLS apply to the NATS sink; config.sink.type is %s." $sink) -}}
{{- end -}}
{{- if and (ne $sink "kafka") (or $v.secrets.kafkaUsername.name $v.secrets.kafkaPassword.name $v.secrets.kafkaTLS.name) -}}
{{- fail (printf "secrets.kafkaUsername, secrets.kafkaPassword and secrets.kafkaTLS apply to the Kafka sink; config.sink.type is %s." $sink) -}}
{{- end -}}
{{- if and $v.secrets.natsToken.name $v.secrets.natsCredentials.name -}}
{{- fail "secrets.natsToken and secrets.natsCredentials: set one NATS authentication, not both." -}}
{{- end -}}
{{- if and (eq $sink "kafka") $v.secrets.kafkaPassword.name (not $v.config.sink.kafka.sasl.mechanism) -}}
{{- fail "secrets.kafkaPassword is set but config.sink.kafka.sasl.mechanism is empty: set plain, scram-sha-256 or scram-sha-512." -}}
{{- end -}}
{{- if and (eq $sink "kafka") $v.config.sink.kafka.sasl.mechanism (not $v.secrets.kafkaPassword.name) -}}
{{- fail "config.sink.kafka.sasl.mechanism is set: name the Secret holding the SASL password in secrets.kafkaPassword." -}}
{{- end -}}
{{- range $name, $t := dict "natsTLS" $v.secrets.natsTLS "kafkaTLS" $v.secrets.kafkaTLS -}}
{{- if and $t.name (ne (empty $t.cert) (empty $t.key)) -}}
{{- fail (printf "secrets.%s: cert and key go together: set both or neither." $name) -}}
{{- end -}}
{{- end -}}
{{- $names := dict -}}
{{- range $i, $s := $v.config.streams -}}
{{- if hasKey $names $s.name -}}
{{- fail (printf "config.streams[%d].name: %q duplicates config.streams[%v].name" $i $s.name (get $names $s.name)) -}}
{{- end -}}
{{- $_ := set $names $s.name $i -}}
{{- $targets := list -}}
{{- range $k := list "stream_id" "session_id" "url" "direct" -}}
{{- if get $s $k -}}{{- $targets = append $targets $k -}}{{- end -}}
{{- end -}}
{{- if ne (len $targets) 1 -}}
{{- fail (printf "config.streams[%d] (%s): %s; set exactly one of stream_id, session_id, url, direct." $i $s.name (ternary "no target is set" (printf "%s are set" (join " and " $targets)) (empty $targets))) -}}
{{- end -}}
{{- end -}}
{{- range $i, $e := $v.extraEnv -}}
{{- if hasPrefix "INGEST_" $e.name -}}
{{- fail (printf "extraEnv[%d].name: %s starts with INGEST_, which the daemon reads as a configuration key; set it under config instead." $i $e.name) -}}
{{- end -}}
{{- end -}}
{{- $drain := include "restless-ingest.drainSeconds" . | int -}}
{{- if lt (int $v.terminationGracePeriodSeconds) $drain -}}
{{- fail (printf "terminationGracePeriodSeconds: %d is shorter than the %ds that draining %d streams may take (2 × pipeline.batch.max_events + 64 events each at 28.4k events/s, plus 10s); raise it." (int $v.terminationGracePeriodSeconds) $drain (len $v.config.streams)) -}}
{{- end -}}
{{- $shutdown := include "restless-ingest.shutdownSeconds" . | float64 -}}
{{- if le (float64 $v.terminationGracePeriodSeconds) $shutdown -}}
{{- fail (printf "terminationGracePeriodSeconds: %d is not above config.shutdown_timeout (%s): the kubelet would kill the daemon before it has handed over, written and saved what it may still finish; raise terminationGracePeriodSeconds or lower config.shutdown_timeout." (int $v.terminationGracePeriodSeconds) (include "restless-ingest.shutdownTimeout" .)) -}}
{{- end -}}
{{- end -}}

{{/*
A Go duration (values.schema.json's pattern: 1m30s, 500ms, 1.5h) in seconds, as
a decimal. Argument: (list "the.value.name" "duration").
*/}}
{{- define "restless-ingest.seconds" -}}
{{- $name := index . 0 -}}
{{- $d := toString (index . 1) -}}
{{- $unit := dict "ns" 0.000000001 "us" 0.000001 "µs" 0.000001 "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 -}}
{{- if not (regexMatch "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$" $d) -}}
{{- fail (printf "%s: %q is not a duration such as 30s, 1m30s or 500ms." $name $d) -}}
{{- end -}}
{{- $total := 0.0 -}}
{{- range $part := regexFindAll "[0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h)" $d -1 -}}
{{- $n := regexFind "^[0-9]+(\\.[0-9]+)?" $part -}}
{{- $u := trimPrefix $n $part -}}
{{- $total = addf $total (mulf (float64 $n) (get $unit $u)) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/* config.shutdown_timeout, or the daemon's default. */}}
{{- define "restless-ingest.shutdownTimeout" -}}
{{- default "30s" .Values.config.shutdown_timeout -}}
{{- end -}}

{{- define "restless-ingest.shutdownSeconds" -}}
{{- include "restless-ingest.seconds" (list "config.shutdown_timeout" (include "restless-ingest.shutdownTimeout" .)) -}}
{{- end -}}

{{/*
The longest drain after SIGTERM, in seconds: every stream's lane holds at most
2 × pipeline.batch.max_events events plus 64 read ahead; written at the slowest
end-to-end rate measured (BENCHMARKS.md section 2: 28.4k events/s, JetStream over
WebSocket, lowest of five runs), plus 10 s for the checkpoint saves and closing
the connections.
*/}}
{{- define "restless-ingest.drainSeconds" -}}
{{- $max := 512 -}}
{{- with .Values.config.pipeline -}}{{- with .batch -}}{{- if .max_events -}}{{- $max = int .max_events -}}{{- end -}}{{- end -}}{{- end -}}
{{- $events := mul (len .Values.config.streams) (add (mul 2 $max) 64) -}}
{{- add (div (add $events 28399) 28400) 10 -}}
{{- end -}}

{{/*
The daemon's configuration file, rendered from .Values.config. Secret values
never appear: each is a ${VAR} that the daemon expands from the environment the
pod's spec fills from the Secrets.
*/}}
{{- define "restless-ingest.config" -}}
{{- $v := .Values -}}
{{- $c := $v.config -}}
{{- $out := dict -}}
{{- $_ := set $out "restless" (deepCopy (default (dict) $c.restless)) -}}
{{- if and $v.cluster $v.cluster.enabled -}}
{{- $_ := set $out "cluster" (dict "enabled" true "name" $v.cluster.name "member" "${POD_NAME}" "lease_ttl" $v.cluster.leaseTTL) -}}
{{- end -}}
{{- $streams := list -}}
{{- range $i, $s := $c.streams -}}
{{- $st := deepCopy $s -}}
{{- $_ := unset $st "verify" -}}
{{- $verify := deepCopy (default (dict) $s.verify) -}}
{{- $_ := unset $verify "secretRefs" -}}
{{- $refs := list -}}
{{- if $s.verify -}}{{- $refs = default (list) $s.verify.secretRefs -}}{{- end -}}
{{- if $refs -}}
{{- $vars := list -}}
{{- range $j, $_ := $refs -}}
{{- $vars = append $vars (printf "${%s}" (include "restless-ingest.hmacEnv" (list $i $j))) -}}
{{- end -}}
{{- $_ := set $verify "secrets" $vars -}}
{{- end -}}
{{- if $verify -}}{{- $_ := set $st "verify" $verify -}}{{- end -}}
{{- $streams = append $streams $st -}}
{{- end -}}
{{- $_ := set $out "streams" $streams -}}
{{- with $c.pipeline -}}{{- $_ := set $out "pipeline" (deepCopy .) -}}{{- end -}}
{{- $sink := dict "type" $c.sink.type -}}
{{- if eq $c.sink.type "nats" -}}
{{- $n := deepCopy (default (dict) $c.sink.nats) -}}
{{- if $v.secrets.natsToken.name -}}{{- $_ := set $n "token" "${NATS_TOKEN}" -}}{{- end -}}
{{- if $v.secrets.natsCredentials.name -}}
{{- $_ := set $n "credentials_file" (printf "%s/%s" (include "restless-ingest.natsCredsDir" .) $v.secrets.natsCredentials.key) -}}
{{- end -}}
{{- with $v.secrets.natsTLS -}}{{- if .name -}}
{{- $tls := dict -}}
{{- $dir := include "restless-ingest.natsTLSDir" $ -}}
{{- if .ca -}}{{- $_ := set $tls "ca_file" (printf "%s/%s" $dir .ca) -}}{{- end -}}
{{- if .cert -}}{{- $_ := set $tls "cert_file" (printf "%s/%s" $dir .cert) -}}{{- end -}}
{{- if .key -}}{{- $_ := set $tls "key_file" (printf "%s/%s" $dir .key) -}}{{- end -}}
{{- $_ := set $n "tls" $tls -}}
{{- end -}}{{- end -}}
{{- $_ := set $sink "nats" $n -}}
{{- else if eq $c.sink.type "kafka" -}}
{{- $k := deepCopy (default (dict) $c.sink.kafka) -}}
{{- $sasl := default (dict) $k.sasl -}}
{{- if $v.secrets.kafkaUsername.name -}}{{- $_ := set $sasl "username" "${KAFKA_SASL_USERNAME}" -}}{{- end -}}
{{- if $v.secrets.kafkaPassword.name -}}{{- $_ := set $sasl "password" "${KAFKA_SASL_PASSWORD}" -}}{{- end -}}
{{- $_ := set $k "sasl" $sasl -}}
{{- with $v.secrets.kafkaTLS -}}{{- if .name -}}
{{- $tls := default (dict) $k.tls -}}
{{- $dir := include "restless-ingest.kafkaTLSDir" $ -}}
{{- $_ := set $tls "enabled" true -}}
{{- if .ca -}}{{- $_ := set $tls "ca_file" (printf "%s/%s" $dir .ca) -}}{{- end -}}
{{- if .cert -}}{{- $_ := set $tls "cert_file" (printf "%s/%s" $dir .cert) -}}{{- end -}}
{{- if .key -}}{{- $_ := set $tls "key_file" (printf "%s/%s" $dir .key) -}}{{- end -}}
{{- $_ := set $k "tls" $tls -}}
{{- end -}}{{- end -}}
{{- $_ := set $sink "kafka" $k -}}
{{- end -}}
{{- $_ := set $out "sink" $sink -}}
{{- $cp := dict "type" $c.checkpoint.type -}}
{{- if eq $c.checkpoint.type "file" -}}
{{- $_ := set $cp "dir" (include "restless-ingest.checkpointDir" .) -}}
{{- else if eq $c.checkpoint.type "nats_kv" -}}
{{- $_ := set $cp "nats_kv_bucket" (default "restless_checkpoints" $c.checkpoint.nats_kv_bucket) -}}
{{- else if eq $c.checkpoint.type "kafka" -}}
{{- $_ := set $cp "kafka_topic" (default "restless_ingest_checkpoints" $c.checkpoint.kafka_topic) -}}
{{- end -}}
{{- $_ := set $out "checkpoint" $cp -}}
{{- with $c.shutdown_timeout -}}{{- $_ := set $out "shutdown_timeout" . -}}{{- end -}}
{{- $_ := set $out "http" (dict "addr" (printf ":%d" (int $v.metrics.port))) -}}
{{- with $c.log -}}{{- $_ := set $out "log" (deepCopy .) -}}{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* Environment: the secret references, then extraEnv. */}}
{{- define "restless-ingest.env" -}}
{{- $v := .Values -}}
{{- if and $v.cluster $v.cluster.enabled -}}
# cluster.member: the pod's own name (ingest-0, ingest-1, ...), stable across restarts.
- name: POD_NAME
  valueFrom:
    fieldRef: {fieldPath: metadata.name}
{{ end -}}
- name: RESTLESS_API_KEY
  valueFrom:
    secretKeyRef: {name: {{ $v.secrets.apiKey.name | quote }}, key: {{ $v.secrets.apiKey.key | quote }}}
{{- range $i, $s := $v.config.streams }}
{{- if $s.verify }}
{{- range $j, $ref := (default (list) $s.verify.secretRefs) }}
- name: {{ include "restless-ingest.hmacEnv" (list $i $j) }}
  valueFrom:
    secretKeyRef: {name: {{ $ref.name | quote }}, key: {{ $ref.key | quote }}}
{{- end }}
{{- end }}
{{- end }}
{{- with $v.secrets.natsToken }}{{ if .name }}
- name: NATS_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ .name | quote }}, key: {{ .key | quote }}}
{{- end }}{{ end }}
{{- with $v.secrets.kafkaUsername }}{{ if .name }}
- name: KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef: {name: {{ .name | quote }}, key: {{ .key | quote }}}
{{- end }}{{ end }}
{{- with $v.secrets.kafkaPassword }}{{ if .name }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ .name | quote }}, key: {{ .key | quote }}}
{{- end }}{{ end }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}
