#!/bin/sh
# Runs redis-server in the foreground with the password from REDIS_PASSWORD, passed in a
# config read from stdin so it shows in no process list.
set -eu
: "${REDIS_PASSWORD:?set REDIS_PASSWORD (compose.yaml takes it from MESH_REDIS_PASSWORD)}"
# The store (Postgres) is the source of truth and the bus resyncs from it, so Redis keeps
# its streams in memory with append-only persistence for quick catch-up after a restart.
exec redis-server - <<CONF
bind 0.0.0.0 ::
protected-mode no
port 6379
dir /var/lib/redis
appendonly yes
save ""
requirepass $REDIS_PASSWORD
CONF
