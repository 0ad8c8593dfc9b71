#!/bin/sh
# FerretDB on SQLite in /var/lib/ferretdb with authentication on (SCRAM; FerretDB 1.x has users but no roles).
# The first start creates the database `admin` and in it the setup user FERRETDB_SETUP_USERNAME (default labhub)
# with the password read from FERRETDB_SETUP_PASSWORD_FILE; later starts find the database and change no user.
set -eu
: "${FERRETDB_SETUP_PASSWORD_FILE:?set FERRETDB_SETUP_PASSWORD_FILE}"
DATA=/var/lib/ferretdb
mkdir -p "$DATA/sqlite"
# In the environment rather than on the command line, where every process in the container could read it.
FERRETDB_SETUP_PASSWORD=$(cat "$FERRETDB_SETUP_PASSWORD_FILE")
export FERRETDB_SETUP_PASSWORD
# Log level error: at warn, FerretDB 1.x dumps every command it does not implement (each client's endSessions at
# close, say) over some twenty lines, and a line for many a health check's bare TCP connection.
exec ferretdb --handler=sqlite --sqlite-url="file:$DATA/sqlite/" --state-dir="$DATA" --listen-addr=:27017 \
  --debug-addr=- --telemetry=disable --log-level="${FERRETDB_LOG_LEVEL:-error}" --test-enable-new-auth \
  --setup-database=admin --setup-username="${FERRETDB_SETUP_USERNAME:-labhub}"
