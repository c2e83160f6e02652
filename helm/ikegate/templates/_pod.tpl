{{/*
Pieces shared by the ikegate pods (edge, worker, control): the config init container, the
volumes every role mounts, and the environment. (dict "root" $ "role" "edge")
*/}}

{{/* The init container that writes /run/ikegate/ikegate.json. */}}
{{- define "ikegate.configInit" -}}
{{- $root := .root -}}
- name: config
  image: {{ include "ikegate.image" $root }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  command: [node, /etc/ikegate/scripts/compose-config.mjs, /etc/ikegate/config/ikegate.json, /run/ikegate/ikegate.json]
  {{- if include "ikegate.redisPasswordSecret" $root }}
  env:
    - name: IKEGATE_REDIS_PASSWORD_FILE
      value: /etc/ikegate/redis/password
  {{- end }}
  securityContext:
    {{- include "ikegate.containerSecurityContext" (dict "root" $root) | nindent 4 }}
  resources:
    requests: {cpu: 10m, memory: 32Mi}
    limits: {memory: 128Mi}
  volumeMounts:
    - {name: config, mountPath: /etc/ikegate/config, readOnly: true}
    - {name: scripts, mountPath: /etc/ikegate/scripts, readOnly: true}
    - {name: run, mountPath: /run/ikegate}
    {{- if include "ikegate.redisPasswordSecret" $root }}
    - {name: redis-password, mountPath: /etc/ikegate/redis, readOnly: true}
    {{- end }}
{{- end -}}

{{/* Environment of every ikegate container. */}}
{{- define "ikegate.env" -}}
- name: POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: POD_IP
  valueFrom: {fieldRef: {fieldPath: status.podIP}}
- name: HOME
  value: /tmp
# `ikegate ctl` in the pod and the lifecycle hooks reach the control API with the operator token.
- name: IKEGATE_URL
  value: {{ include "ikegate.controlUrl" .root }}
- name: IKEGATE_TOKEN_FILE
  value: /etc/ikegate/lifecycle/token
- name: IKEGATE_MEMBER_ID
  value: $(POD_NAME)
{{- with .drainSeconds }}
- name: IKEGATE_DRAIN_SECONDS
  value: {{ . | quote }}
{{- end }}
{{- if .root.Values.control.tls.existingSecret }}
- name: NODE_EXTRA_CA_CERTS
  value: /etc/ikegate/control-tls/ca.crt
{{- end }}
{{- end -}}

{{/* Mounts of every ikegate container (role-specific ones are added by the role). */}}
{{- define "ikegate.mounts" -}}
- {name: run, mountPath: /run/ikegate}
- {name: tmp, mountPath: /tmp}
- {name: scripts, mountPath: /etc/ikegate/scripts, readOnly: true}
- {name: kek, mountPath: /etc/ikegate/kek, readOnly: true}
- {name: access, mountPath: /etc/ikegate/access, readOnly: true}
- {name: lifecycle-token, mountPath: /etc/ikegate/lifecycle, readOnly: true}
{{- if .root.Values.control.tls.existingSecret }}
- {name: control-tls, mountPath: /etc/ikegate/control-tls, readOnly: true}
{{- end }}
{{- if and (eq .root.Values.redis.mode "external") .root.Values.redis.external.tls.enabled }}
- {name: redis-tls, mountPath: /etc/ikegate/redis-tls, readOnly: true}
{{- end }}
{{- end -}}

{{/* Volumes of every ikegate pod. */}}
{{- define "ikegate.volumes" -}}
{{- $root := .root -}}
- name: config
  configMap: {name: {{ include "ikegate.configName" $root }}}
- name: scripts
  configMap: {name: {{ include "ikegate.scriptsName" $root }}}
- name: run
  emptyDir: {medium: Memory, sizeLimit: 16Mi}
- name: tmp
  emptyDir: {sizeLimit: 256Mi}
- name: kek
  secret: {secretName: {{ include "ikegate.kekSecret" $root }}, defaultMode: 0440, items: [{key: kek, path: kek}]}
- name: access
  secret: {secretName: {{ include "ikegate.accessSecret" $root }}, defaultMode: 0440}
- name: lifecycle-token
  secret:
    secretName: {{ include "ikegate.lifecycleTokenSecret" $root }}
    defaultMode: 0440
    items: [{key: {{ include "ikegate.lifecycleTokenKey" $root }}, path: token}]
{{- with include "ikegate.redisPasswordSecret" $root }}
- name: redis-password
  secret: {secretName: {{ . }}, defaultMode: 0440, items: [{key: {{ include "ikegate.redisPasswordKey" $root }}, path: password}]}
{{- end }}
{{- if $root.Values.control.tls.existingSecret }}
- name: control-tls
  secret: {secretName: {{ $root.Values.control.tls.existingSecret }}, defaultMode: 0440}
{{- end }}
{{- if and (eq $root.Values.redis.mode "external") $root.Values.redis.external.tls.enabled }}
- name: redis-tls
  secret: {secretName: {{ required "redis.external.tls.existingSecret is required with redis.external.tls.enabled" $root.Values.redis.external.tls.existingSecret }}, defaultMode: 0440}
{{- end }}
{{- end -}}

{{/* Pod annotations: checksums, optional scrape annotations, the component's own. (dict "root" $ "v" .Values.edge "port" 9090) */}}
{{- define "ikegate.podAnnotations" -}}
{{ include "ikegate.checksums" .root }}
{{- if .root.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- with .v.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}
