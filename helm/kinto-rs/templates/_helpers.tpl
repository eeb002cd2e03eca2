{{/* Names and labels shared by every template. */}}

{{- define "kinto-rs.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Kept to 50 characters: suffixes such as "-gateway" and StatefulSet pod ordinals follow it. */}}
{{- define "kinto-rs.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else if contains (include "kinto-rs.name" .) .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "kinto-rs.name" .) | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "kinto-rs.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{ include "kinto-rs.selectorLabels" . }}
{{- end }}

{{- define "kinto-rs.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kinto-rs.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selector of one component's pods: include with (list $ "gateway"). */}}
{{- define "kinto-rs.componentSelector" -}}
{{ include "kinto-rs.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "kinto-rs.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "kinto-rs.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kinto-rs.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kinto-rs.secretName" -}}
{{- default (printf "%s-settings" (include "kinto-rs.fullname" .)) .Values.existingSecret }}
{{- end }}

{{- define "kinto-rs.mtlsSecretName" -}}
{{- default (printf "%s-mtls" (include "kinto-rs.fullname" .)) .Values.mtls.existingSecret }}
{{- end }}

{{/* The shards' headless Service, which gives each pod a stable DNS name. */}}
{{- define "kinto-rs.shardService" -}}
{{ include "kinto-rs.fullname" . }}-shard
{{- end }}

{{/* A settings map as KINTO_* variables: upper case, "." and "-" as "_" (docs/configuration.md). */}}
{{- define "kinto-rs.envMap" -}}
{{- range $key, $value := . }}
{{ printf "KINTO_%s" ($key | upper | replace "." "_" | replace "-" "_") }}: {{ (kindIs "string" $value) | ternary $value (toJson $value) | quote }}
{{- end }}
{{- end }}

{{/* The non-secret CQL settings, shared by the shards and the migration Job (YAML; read with fromYaml). */}}
{{- define "kinto-rs.cqlSettings" -}}
{{- $c := .Values.storage.cql }}
{{- $s := dict "storage_backend" "cql" "cql_contact_points" $c.contactPoints "cql_keyspace" $c.keyspace "cql_replication" $c.replication "cql_consistency" $c.consistency }}
{{- if $c.username }}{{ $_ := set $s "cql_username" $c.username }}{{ end }}
{{- if $c.tlsCaSecret }}{{ $_ := set $s "cql_tls_ca_file" "/etc/kinto/cql-ca/ca.crt" }}{{ end }}
{{- if $c.shardRoles }}{{ $_ := set $s "cql_shard_roles" "true" }}{{ end }}
{{- toYaml $s }}
{{- end }}

{{/* "true" when the operator changes the shard count: on CQL the shards share one map in the keyspace, so the
     operator moves slots and sizes the shards' StatefulSet. The embedded store's map is a file per machine
     (it would need a ReadWriteMany volume): there the count stays fixed. */}}
{{- define "kinto-rs.operatorReshards" -}}
{{- if and (include "kinto-rs.isCql" .) .Values.operator.enabled }}true{{ end }}
{{- end }}

{{/* The shards' `shard_count`. Where the operator reshards, the stored map decides the count and this only seeds a
     new deployment's first map: an upgrade keeps the seed the live ConfigMap holds, so changing `shards.replicas`
     leaves the shards' settings, and so their pods, as they are. */}}
{{- define "kinto-rs.shardCount" -}}
{{- $count := int .Values.shards.replicas }}
{{- if include "kinto-rs.operatorReshards" . }}
{{- $live := lookup "v1" "ConfigMap" .Release.Namespace (printf "%s-shard" (include "kinto-rs.fullname" .)) }}
{{- with index ($live | default dict) "data" | default dict }}
{{- with index . "KINTO_SHARD_COUNT" }}{{ $count = int . }}{{ end }}
{{- end }}
{{- end }}
{{- $count }}
{{- end }}

{{/* The shards' ConfigMap data (KINTO_* variables): a define, so that the StatefulSet's checksum covers it alone
     and a change of the gateways' settings (their shard_urls) rolls no shard. */}}
{{- define "kinto-rs.shardEnv" -}}
{{- $shard := dict "bind" (printf "0.0.0.0:%d" (int .Values.shards.port)) "shard_count" (include "kinto-rs.shardCount" . | int) }}
{{- if include "kinto-rs.operatorReshards" . }}
{{- $_ := set $shard "placement_managed" "true" }}
{{- end }}
{{- if .Values.shards.metricsPort }}
{{- $_ := set $shard "metrics_bind" (printf "0.0.0.0:%d" (int .Values.shards.metricsPort)) }}
{{- end }}
{{- if .Values.mtls.enabled }}
{{- /* The gateway -> shard channel's mutual TLS (docs/security.md, docs/configuration.md). */}}
{{- $_ := set $shard "grpc_client_ca_file" "/etc/kinto/mtls/ca.crt" }}
{{- $_ := set $shard "grpc_server_cert_file" "/etc/kinto/mtls/shard.crt" }}
{{- $_ := set $shard "grpc_server_key_file" "/etc/kinto/mtls/shard.key" }}
{{- else }}
{{- /* Without mtls, as for the gateways (configmap.yaml). */}}
{{- $_ := set $shard "grpc_insecure" "true" }}
{{- end }}
{{- if include "kinto-rs.isCql" . }}
{{- $shard = merge $shard (include "kinto-rs.cqlSettings" . | fromYaml) }}
{{- else }}
{{- $_ := set $shard "storage_backend" "embedded" }}
{{- $_ := set $shard "data_dir" "/data" }}
{{- end }}
{{- include "kinto-rs.envMap" (merge $shard .Values.shards.settings .Values.settings) | trim }}
{{- end }}

{{- define "kinto-rs.isCql" -}}
{{- if eq .Values.storage.backend "cql" }}true{{ else if ne .Values.storage.backend "embedded" }}{{ fail "storage.backend must be embedded or cql" }}{{ end }}
{{- end }}
