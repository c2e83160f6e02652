{{/*
The ikegate configuration file (docs/configuration.md) as JSON (JSON is YAML, which ikegate
reads). The user's `config:` is the base; the chart sets what it owns on top: the listeners (from
edge.*), control (control.*, api.*), and cluster.redis / kek / relayTls (redis.*, secrets.*). The
Redis password is not in here: the config init container adds it from its Secret at start
(files/compose-config.mjs), because the config file has no password-file option.
*/}}

{{- define "ikegate.redisConfig" -}}
{{- $r := dict -}}
{{- if eq .Values.redis.mode "bundled" -}}
{{- $b := .Values.redis.bundled -}}
{{- if $b.sentinel.enabled -}}
{{- $sentinels := list -}}
{{- range $i := until (int $b.replicas) -}}
{{- $host := printf "%s-%d.%s.%s" (include "ikegate.redisName" $) $i (include "ikegate.redisHeadless" $) (include "ikegate.nsDomain" $) -}}
{{- $sentinels = append $sentinels (dict "host" $host "port" (int $b.sentinel.port)) -}}
{{- end -}}
{{- $_ := set $r "sentinels" $sentinels -}}
{{- $_ := set $r "name" $b.sentinel.masterName -}}
{{- else -}}
{{- $_ := set $r "host" (printf "%s.%s" (include "ikegate.redisName" .) (include "ikegate.nsDomain" .)) -}}
{{- $_ := set $r "port" (int $b.port) -}}
{{- end -}}
{{- else -}}
{{- $e := .Values.redis.external -}}
{{- if eq $e.mode "sentinel" -}}
{{- $sentinels := list -}}
{{- range $e.sentinels -}}
{{- $sentinels = append $sentinels (dict "host" .host "port" (int (default 26379 .port))) -}}
{{- end -}}
{{- $_ := set $r "sentinels" $sentinels -}}
{{- $_ := set $r "name" $e.masterName -}}
{{- else if eq $e.mode "cluster" -}}
{{- $nodes := list -}}
{{- range $e.nodes -}}
{{- $nodes = append $nodes (dict "host" .host "port" (int (default 6379 .port))) -}}
{{- end -}}
{{- $_ := set $r "nodes" $nodes -}}
{{- else -}}
{{- $_ := set $r "host" $e.host -}}
{{- $_ := set $r "port" (int $e.port) -}}
{{- end -}}
{{- with $e.username -}}
{{- $_ := set $r "username" . -}}
{{- end -}}
{{- if $e.tls.enabled -}}
{{- $tls := dict "ca" "/etc/ikegate/redis-tls/ca.crt" -}}
{{- if $e.tls.clientCertificate -}}
{{- $_ := set $tls "certificate" "/etc/ikegate/redis-tls/tls.crt" -}}
{{- $_ := set $tls "key" "/etc/ikegate/redis-tls/tls.key" -}}
{{- end -}}
{{- with $e.tls.servername -}}
{{- $_ := set $tls "servername" . -}}
{{- end -}}
{{- $_ := set $r "tls" $tls -}}
{{- end -}}
{{- end -}}
{{- if not (kindIs "invalid" .Values.redis.replicaAcks) -}}
{{- $_ := set $r "replicaAcks" (int .Values.redis.replicaAcks) -}}
{{- end -}}
{{- toJson $r -}}
{{- end -}}

{{- define "ikegate.configJson" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $e := .Values.edge -}}
{{- $tlsListen := dict "address" "0.0.0.0" "port" (int $e.containerPorts.tls) "enabled" $e.protocols.tls -}}
{{- if $e.tlsSecret -}}
{{- $_ := set $tlsListen "certificate" "/etc/ikegate/listen-tls/tls.crt" -}}
{{- $_ := set $tlsListen "key" "/etc/ikegate/listen-tls/tls.key" -}}
{{- end -}}
{{- $listen := dict
  "udp" (dict "address" "0.0.0.0" "ikePort" (int $e.containerPorts.ike) "natTPort" (int $e.containerPorts.natT) "enabled" $e.protocols.udp)
  "tcp" (dict "address" "0.0.0.0" "port" (int $e.containerPorts.tcp) "enabled" $e.protocols.tcp)
  "tls" $tlsListen -}}
{{- $control := dict "address" "0.0.0.0" "port" (int .Values.control.port) "accessFile" "/etc/ikegate/access/access.yaml" -}}
{{- if .Values.control.tls.existingSecret -}}
{{- $ctls := dict "certificate" "/etc/ikegate/control-tls/tls.crt" "key" "/etc/ikegate/control-tls/tls.key" -}}
{{- if .Values.control.tls.clientAuth -}}
{{- $_ := set $ctls "clientCa" "/etc/ikegate/control-tls/ca.crt" -}}
{{- end -}}
{{- $_ := set $control "tls" $ctls -}}
{{- end -}}
{{- $cluster := dict
  "redis" (include "ikegate.redisConfig" . | fromJson)
  "kek" (dict "file" "/etc/ikegate/kek/kek" "id" (int .Values.secrets.kek.id))
  "relayTls" (dict "ca" "/etc/ikegate/relay/ca.crt" "certificate" "/etc/ikegate/relay/tls.crt" "key" "/etc/ikegate/relay/tls.key") -}}
{{- $owned := dict "listen" $listen "control" $control "cluster" $cluster -}}
{{- $merged := mergeOverwrite $cfg $owned -}}
{{- /* Drop empty sections so the file shows only what is set (null and {} mean "defaults" anyway). */ -}}
{{- range $k, $v := $merged -}}
{{- if and (or (kindIs "map" $v) (kindIs "slice" $v)) (empty $v) -}}
{{- $_ := unset $merged $k -}}
{{- end -}}
{{- end -}}
{{- toPrettyJson $merged -}}
{{- end -}}
