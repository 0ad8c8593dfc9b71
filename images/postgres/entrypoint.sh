#!/bin/sh
# Makes the cluster on first start (superuser password from POSTGRES_PASSWORD_FILE, scram over TCP, database
# POSTGRES_DB), then runs the server as user postgres.
set -eu
BIN=/usr/lib/postgresql/15/bin
: "${POSTGRES_PASSWORD_FILE:?set POSTGRES_PASSWORD_FILE}"
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 0700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  runuser -u postgres -- "$BIN/initdb" -D "$PGDATA" -U postgres --pwfile="$POSTGRES_PASSWORD_FILE" \
    --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --no-locale >/dev/null
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
  runuser -u postgres -- "$BIN/pg_ctl" -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
  runuser -u postgres -- "$BIN/psql" -v ON_ERROR_STOP=1 -q -c "CREATE DATABASE \"$POSTGRES_DB\""
  runuser -u postgres -- "$BIN/pg_ctl" -D "$PGDATA" -w stop >/dev/null
  echo "created the cluster and database $POSTGRES_DB"
fi
exec runuser -u postgres -- "$BIN/postgres" -D "$PGDATA"
