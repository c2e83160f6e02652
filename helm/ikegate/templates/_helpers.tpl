{{/*
Names, labels and small shared pieces. Every object name is fullname + "-" + a short suffix; the
fullname is cut to 40 characters so the longest one (fullname-redis-headless and StatefulSet pod
names with their controller-revision-hash label) stays within 63.
*/}}

{{- define "ikegate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "ikegate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ikegate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "ikegate.labels" -}}
helm.sh/chart: {{ include "ikegate.chart" . }}
app.kubernetes.io/name: {{ include "ikegate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ikegate
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "edge"). */}}
{{- define "ikegate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ikegate.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* All labels of one component's objects. */}}
{{- define "ikegate.componentLabels" -}}
{{ include "ikegate.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ikegate.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "ikegate.redisImage" -}}
{{- $i := .Values.redis.bundled.image -}}
{{- if $i.digest -}}
{{- printf "%s@%s" $i.repository $i.digest -}}
{{- else -}}
{{- printf "%s:%s" $i.repository $i.tag -}}
{{- end -}}
{{- end -}}

{{- define "ikegate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ikegate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ikegate.tunName" -}}
{{- ((.Values.config.dataplane | default dict).tun | default dict).name | default "ikg0" -}}
{{- end -}}

{{/* Object names. */}}
{{- define "ikegate.configName" -}}{{ include "ikegate.fullname" . }}-config{{- end -}}
{{- define "ikegate.scriptsName" -}}{{ include "ikegate.fullname" . }}-scripts{{- end -}}
{{- define "ikegate.controlName" -}}{{ include "ikegate.fullname" . }}-control{{- end -}}
{{- define "ikegate.edgeName" -}}{{ include "ikegate.fullname" . }}-edge{{- end -}}
{{- define "ikegate.workerName" -}}{{ include "ikegate.fullname" . }}-worker{{- end -}}
{{- define "ikegate.redisName" -}}{{ include "ikegate.fullname" . }}-redis{{- end -}}
{{- define "ikegate.redisHeadless" -}}{{ include "ikegate.fullname" . }}-redis-headless{{- end -}}

{{/* Secret names: the user's existingSecret or the chart's own. */}}
{{- define "ikegate.kekSecret" -}}
{{- default (printf "%s-kek" (include "ikegate.fullname" .)) .Values.secrets.kek.existingSecret -}}
{{- end -}}
{{- define "ikegate.relayTlsSecret" -}}
{{- default (printf "%s-relay-tls" (include "ikegate.fullname" .)) .Values.secrets.relayTls.existingSecret -}}
{{- end -}}
{{- define "ikegate.pskSecret" -}}
{{- default (printf "%s-psks" (include "ikegate.fullname" .)) .Values.secrets.psks.existingSecret -}}
{{- end -}}
{{- define "ikegate.accessSecret" -}}
{{- default (printf "%s-api-access" (include "ikegate.fullname" .)) .Values.api.accessFile.existingSecret -}}
{{- end -}}
{{- define "ikegate.tokensSecret" -}}{{ include "ikegate.fullname" . }}-api-tokens{{- end -}}
{{- define "ikegate.lifecycleTokenSecret" -}}
{{- default (include "ikegate.tokensSecret" .) .Values.api.lifecycleToken.existingSecret -}}
{{- end -}}
{{- define "ikegate.lifecycleTokenKey" -}}
{{- if .Values.api.lifecycleToken.existingSecret -}}{{ .Values.api.lifecycleToken.key }}{{- else -}}lifecycle{{- end -}}
{{- end -}}

{{/* Redis password Secret and key, or nothing when Redis has no password. */}}
{{- define "ikegate.redisPasswordSecret" -}}
{{- if eq .Values.redis.mode "bundled" -}}
{{- if .Values.redis.bundled.auth.enabled -}}
{{- default (printf "%s-redis" (include "ikegate.fullname" .)) .Values.redis.bundled.auth.existingSecret -}}
{{- end -}}
{{- else -}}
{{- .Values.redis.external.password.existingSecret -}}
{{- end -}}
{{- end -}}
{{- define "ikegate.redisPasswordKey" -}}
{{- if eq .Values.redis.mode "bundled" -}}
{{- if .Values.redis.bundled.auth.existingSecret -}}{{ .Values.redis.bundled.auth.existingSecretKey }}{{- else -}}password{{- end -}}
{{- else -}}
{{- .Values.redis.external.password.key -}}
{{- end -}}
{{- end -}}

{{/* The cluster DNS suffix of this namespace: <ns>.svc.<domain>. */}}
{{- define "ikegate.nsDomain" -}}
{{- printf "%s.svc.%s" .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{/* The control API's in-cluster URL. */}}
{{- define "ikegate.controlUrl" -}}
{{- $scheme := ternary "https" "http" (not (empty .Values.control.tls.existingSecret)) -}}
{{- printf "%s://%s.%s:%d" $scheme (include "ikegate.controlName" .) (include "ikegate.nsDomain" .) (int .Values.control.service.port) -}}
{{- end -}}

{{/*
A reused or new random value for a chart-managed Secret: the value already stored in the cluster
(lookup) when there is one, so an upgrade keeps it; otherwise `gen`. `helm template` and
`--dry-run=client` cannot look anything up and so show a new value each time.
(dict "root" $ "secret" NAME "key" KEY "gen" VALUE)
*/}}
{{- define "ikegate.keep" -}}
{{- $s := lookup "v1" "Secret" .root.Release.Namespace .secret -}}
{{- if and $s $s.data (hasKey $s.data .key) -}}
{{- index $s.data .key | b64dec -}}
{{- else -}}
{{- .gen -}}
{{- end -}}
{{- end -}}

{{/* Pod-level security context shared by ikegate pods. */}}
{{- define "ikegate.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext -}}
{{- end -}}

{{/* The container security context: non-root, read-only root, no capabilities unless added. (dict "root" $ "add" (list "NET_ADMIN")) */}}
{{- define "ikegate.containerSecurityContext" -}}
{{- $sc := deepCopy .root.Values.containerSecurityContext -}}
{{- if .add -}}
{{- $_ := set $sc "capabilities" (dict "drop" (list "ALL") "add" .add) -}}
{{- end -}}
{{- toYaml $sc -}}
{{- end -}}

{{/* Scheduling fields of one component (its values). */}}
{{- define "ikegate.scheduling" -}}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
topologySpreadConstraints: the component's own list, or (when empty and spread.enabled) one per
topology key with the component's selector filled in. (dict "root" $ "component" "edge" "v" .Values.edge)
*/}}
{{- define "ikegate.spread" -}}
{{- if .v.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml .v.topologySpreadConstraints | nindent 2 }}
{{- else if .v.spread.enabled }}
topologySpreadConstraints:
{{- range .v.spread.topologyKeys }}
  - maxSkew: {{ $.v.spread.maxSkew }}
    topologyKey: {{ . }}
    whenUnsatisfiable: {{ $.v.spread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "ikegate.selectorLabels" (dict "root" $.root "component" $.component) | nindent 8 }}
    {{- if $.hashKey }}
    matchLabelKeys: [pod-template-hash]
    {{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Checksums that roll the pods when their configuration or secrets change. */}}
{{- define "ikegate.checksums" -}}
checksum/config: {{ include "ikegate.configJson" . | sha256sum }}
checksum/scripts: {{ include (print $.Template.BasePath "/scripts.yaml") . | sha256sum }}
{{- /* Chart-generated secrets never change once created (they are looked up), and the access file
is reloaded by the processes themselves; what needs a restart is a PSK value or another Secret. */}}
checksum/secrets: {{ toJson (dict "secrets" .Values.secrets "redis" (include "ikegate.redisPasswordSecret" .) "lifecycle" .Values.api.lifecycleToken "tls" (list .Values.edge.tlsSecret .Values.control.tls)) | sha256sum }}
{{- end -}}

{{/* Fail early on values that cannot work together. */}}
{{- define "ikegate.validate" -}}
{{- if and (eq .Values.redis.mode "external") (eq .Values.redis.external.mode "standalone") (empty .Values.redis.external.host) -}}
{{- fail "redis.external.host is required with redis.mode=external and redis.external.mode=standalone" -}}
{{- end -}}
{{- if and (eq .Values.redis.mode "external") (eq .Values.redis.external.mode "sentinel") (empty .Values.redis.external.sentinels) -}}
{{- fail "redis.external.sentinels is required with redis.external.mode=sentinel" -}}
{{- end -}}
{{- if and (eq .Values.redis.mode "external") (eq .Values.redis.external.mode "cluster") (empty .Values.redis.external.nodes) -}}
{{- fail "redis.external.nodes is required with redis.external.mode=cluster" -}}
{{- end -}}
{{- if and (eq .Values.redis.mode "external") .Values.redis.external.username (not .Values.redis.external.password.existingSecret) -}}
{{- fail "redis.external.username needs redis.external.password.existingSecret (an ACL user authenticates with both)" -}}
{{- end -}}
{{- if and .Values.edge.autoscaling.enabled (lt (int .Values.edge.autoscaling.maxReplicas) (int .Values.edge.autoscaling.minReplicas)) -}}
{{- fail "edge.autoscaling.maxReplicas must be at least edge.autoscaling.minReplicas" -}}
{{- end -}}
{{- if not (or .Values.edge.protocols.udp .Values.edge.protocols.tcp .Values.edge.protocols.tls) -}}
{{- fail "edge.protocols: enable at least one of udp, tcp, tls" -}}
{{- end -}}
{{- if and .Values.redis.bundled.sentinel.enabled (eq .Values.redis.mode "bundled") (lt (int .Values.redis.bundled.replicas) 3) -}}
{{- fail "redis.bundled.replicas must be at least 3 with redis.bundled.sentinel.enabled (a Sentinel quorum needs a majority)" -}}
{{- end -}}
{{- end -}}

{{/* The worker's security context when it needs NET_ADMIN: only that capability, root UID (see worker.runAsRoot). */}}
{{- define "ikegate.workerSecurityContext" -}}
{{- include "ikegate.netAdminSecurityContext" (dict "root" . "add" (list "NET_ADMIN")) -}}
{{- end -}}

{{/* NET_ADMIN (and whatever else `add` lists) for UID 0; (dict "root" $ "add" (list ...)). */}}
{{- define "ikegate.netAdminSecurityContext" -}}
{{- $sc := deepCopy .root.Values.containerSecurityContext -}}
{{- $_ := set $sc "capabilities" (dict "drop" (list "ALL") "add" .add) -}}
{{- if .root.Values.worker.runAsRoot -}}
{{- $_ := set $sc "runAsNonRoot" false -}}
{{- $_ := set $sc "runAsUser" 0 -}}
{{- $_ := set $sc "runAsGroup" 0 -}}
{{- end -}}
{{- toYaml $sc -}}
{{- end -}}
