#!/bin/sh
# Starts redis-server (argument "server") or redis-sentinel ("sentinel") in a pod of the bundled
# Redis StatefulSet. The primary is whatever the Sentinels of the other pods name; when none
# answers (first start), pod 0. Host names, not pod IPs, are announced, so a restarted pod keeps
# its identity. Environment: REDIS_PASSWORD (optional), HEADLESS (the headless Service's FQDN),
# SET_NAME, REPLICAS, SENTINEL (true|false), MASTER_NAME, QUORUM, DOWN_AFTER_MS, FAILOVER_TIMEOUT_MS,
# PERSISTENT (true|false), REDIS_PORT, SENTINEL_PORT.
set -eu
role="$1"
host="$(hostname).${HEADLESS}"
first="${SET_NAME}-0.${HEADLESS}"

# Asks the other pods' Sentinels which node is the primary; prints it, or nothing.
ask_sentinels() {
  i=0
  while [ "$i" -lt "$REPLICAS" ]; do
    h="${SET_NAME}-${i}.${HEADLESS}"
    if [ "$h" != "$host" ]; then
      m="$(env -u REDISCLI_AUTH timeout 3 redis-cli -h "$h" -p "$SENTINEL_PORT" sentinel get-master-addr-by-name "$MASTER_NAME" 2>/dev/null | head -n 1 || true)"
      if [ -n "$m" ]; then echo "$m"; return 0; fi
    fi
    i=$((i + 1))
  done
}

primary() {
  m=""
  if [ "$SENTINEL" = "true" ]; then m="$(ask_sentinels)"; fi
  if [ -z "$m" ]; then m="$first"; fi
  echo "$m"
}

if [ "$role" = "server" ]; then
  conf="${RUN_DIR:-/run/redis}/redis.conf"
  {
    echo "port ${REDIS_PORT}"
    echo "bind * -::*"
    echo "protected-mode no"
    echo "dir ${DATA_DIR:-/data}"
    echo "appendonly yes"
    echo "replica-announce-ip ${host}"
    if [ -n "${REDIS_PASSWORD:-}" ]; then
      echo "requirepass ${REDIS_PASSWORD}"
      echo "masterauth ${REDIS_PASSWORD}"
    fi
  } > "$conf"
  [ -f /etc/redis-extra/extra.conf ] && cat /etc/redis-extra/extra.conf >> "$conf"
  if [ "$SENTINEL" = "true" ]; then
    m="$(primary)"
    # Without persistence a restarted pod is empty: it must not come back as the primary the
    # Sentinels still name (its replicas would copy the empty data set). Wait (bounded) for them
    # to fail over to a replica that has the data.
    if [ "$m" = "$host" ] && [ "$PERSISTENT" != "true" ] && [ -n "$(ask_sentinels)" ]; then
      n=0
      while [ "$n" -lt 60 ] && [ "$(ask_sentinels)" = "$host" ]; do sleep 1; n=$((n + 1)); done
      m="$(primary)"
    fi
    if [ "$m" != "$host" ]; then echo "replicaof ${m} ${REDIS_PORT}" >> "$conf"; fi
    echo "redis-start: ${host} starts as $([ "$m" = "$host" ] && echo primary || echo "replica of ${m}")"
  fi
  exec redis-server "$conf"
fi

if [ "$role" = "sentinel" ]; then
  conf="${RUN_DIR:-/run/redis}/sentinel.conf"
  m="$(primary)"
  {
    echo "port ${SENTINEL_PORT}"
    echo "sentinel resolve-hostnames yes"
    echo "sentinel announce-hostnames yes"
    echo "sentinel announce-ip ${host}"
    echo "sentinel monitor ${MASTER_NAME} ${m} ${REDIS_PORT} ${QUORUM}"
    echo "sentinel down-after-milliseconds ${MASTER_NAME} ${DOWN_AFTER_MS}"
    echo "sentinel failover-timeout ${MASTER_NAME} ${FAILOVER_TIMEOUT_MS}"
    echo "sentinel parallel-syncs ${MASTER_NAME} 1"
    if [ -n "${REDIS_PASSWORD:-}" ]; then echo "sentinel auth-pass ${MASTER_NAME} ${REDIS_PASSWORD}"; fi
  } > "$conf"
  echo "redis-start: sentinel on ${host} monitors ${m}"
  exec redis-sentinel "$conf"
fi

echo "usage: redis-start.sh server|sentinel" >&2
exit 2
