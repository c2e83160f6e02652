{{/*
The chart-generated secret values, computed once per render (memoized in .Values) so that every
template and every checksum sees the same ones. Each is the value already stored in the cluster
when there is one (lookup: upgrades keep keys, tokens and certificates), else a new random one.
`helm template` cannot look anything up: it shows new values every run.
*/}}
{{- define "ikegate.secretValues" -}}
{{- if not (hasKey .Values "__ikegateGenerated") -}}
{{- $fn := include "ikegate.fullname" . -}}
{{- $g := dict -}}
{{- if not .Values.secrets.kek.existingSecret -}}
{{- $_ := set $g "kek" (include "ikegate.keep" (dict "root" . "secret" (printf "%s-kek" $fn) "key" "kek" "gen" (sha256sum (randAlphaNum 64)))) -}}
{{- end -}}
{{- $tok := printf "%s-api-tokens" $fn -}}
{{- $tokens := dict -}}
{{- if .Values.api.adminToken.enabled -}}
{{- $_ := set $tokens "admin" (include "ikegate.keep" (dict "root" . "secret" $tok "key" "admin" "gen" (printf "ikg_%s" (randAlphaNum 43)))) -}}
{{- end -}}
{{- if not .Values.api.lifecycleToken.existingSecret -}}
{{- $_ := set $tokens "lifecycle" (include "ikegate.keep" (dict "root" . "secret" $tok "key" "lifecycle" "gen" (printf "ikg_%s" (randAlphaNum 43)))) -}}
{{- end -}}
{{- if .Values.tests.enabled -}}
{{- $_ := set $tokens "test" (include "ikegate.keep" (dict "root" . "secret" $tok "key" "test" "gen" (printf "ikg_%s" (randAlphaNum 43)))) -}}
{{- $_ := set $tokens "test-psk" (include "ikegate.keep" (dict "root" . "secret" $tok "key" "test-psk" "gen" (randAlphaNum 32))) -}}
{{- end -}}
{{- $_ := set $g "tokens" $tokens -}}
{{- if and (eq .Values.redis.mode "bundled") .Values.redis.bundled.auth.enabled (not .Values.redis.bundled.auth.existingSecret) -}}
{{- $_ := set $g "redisPassword" (include "ikegate.keep" (dict "root" . "secret" (printf "%s-redis" $fn) "key" "password" "gen" (randAlphaNum 32))) -}}
{{- end -}}
{{- if not .Values.secrets.relayTls.existingSecret -}}
{{- $name := printf "%s-relay-tls" $fn -}}
{{- $s := lookup "v1" "Secret" .Release.Namespace $name -}}
{{- if and $s $s.data (hasKey $s.data "worker.key") -}}
{{- $relay := dict -}}
{{- range $k := list "ca.crt" "edge.crt" "edge.key" "worker.crt" "worker.key" -}}
{{- $_ := set $relay $k (index $s.data $k | b64dec) -}}
{{- end -}}
{{- $_ := set $g "relay" $relay -}}
{{- else -}}
{{- $days := int .Values.secrets.relayTls.validityDays -}}
{{- $ca := genCA (printf "ikegate relay CA %s/%s" .Release.Namespace .Release.Name) $days -}}
{{- $edge := genSignedCert "edge" nil nil $days $ca -}}
{{- $worker := genSignedCert "worker" nil nil $days $ca -}}
{{- $_ := set $g "relay" (dict "ca.crt" $ca.Cert "edge.crt" $edge.Cert "edge.key" $edge.Key "worker.crt" $worker.Cert "worker.key" $worker.Key) -}}
{{- end -}}
{{- end -}}
{{- $_ := set .Values "__ikegateGenerated" $g -}}
{{- end -}}
{{- toJson (index .Values "__ikegateGenerated") -}}
{{- end -}}

{{/* The access file the chart renders: the user's tokens and clients plus the chart's tokens. */}}
{{- define "ikegate.accessFile" -}}
{{- $g := include "ikegate.secretValues" . | fromJson -}}
{{- $tokens := list -}}
{{- range .Values.api.tokens -}}
{{- $tokens = append $tokens (dict "name" .name "role" .role "sha256" .sha256) -}}
{{- end -}}
{{- with $g.tokens.admin -}}
{{- $tokens = append $tokens (dict "name" "chart-admin" "role" "admin" "sha256" (sha256sum .)) -}}
{{- end -}}
{{- with $g.tokens.lifecycle -}}
{{- $tokens = append $tokens (dict "name" "k8s-lifecycle" "role" "operator" "sha256" (sha256sum .)) -}}
{{- end -}}
{{- with $g.tokens.test -}}
{{- $tokens = append $tokens (dict "name" "helm-test" "role" "admin" "sha256" (sha256sum .)) -}}
{{- end -}}
{{- $doc := dict "tokens" $tokens -}}
{{- with .Values.api.clients -}}
{{- $_ := set $doc "clients" . -}}
{{- end -}}
# The API access file (docs/api.md): tokens by SHA-256, client certificates, each with a role.
# Rendered by the ikegate chart; every ikegate process reloads it within a second of a change.
{{ toYaml $doc }}
{{- end -}}
