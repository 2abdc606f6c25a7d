#!/bin/sh
# Initialises the cluster on the first start (user and database `mesh`, the password from
# POSTGRES_PASSWORD, password logins over the network), then runs Postgres in the
# foreground so the container's stop signal reaches it.
set -eu
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD (compose.yaml takes it from MESH_PG_PASSWORD)}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb --pgdata="$PGDATA" --username=mesh --pwfile="$pwfile" --auth-local=peer \
    --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "host all all ::/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "CREATE DATABASE mesh OWNER mesh;" | postgres --single -D "$PGDATA" -c listen_addresses='' postgres >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/run/postgresql
