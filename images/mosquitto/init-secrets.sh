#!/bin/sh
# First start of the lab: generate every secret once into /secrets (a volume, never the repository), and the
# dynamic-security file with its admin. Later starts find them and change nothing.
set -eu
S=/secrets
DATA=/mosquitto/data
mkdir -p "$S" "$DATA"
gen() {
  if [ ! -s "$S/$1" ]; then
    head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | cut -c1-40 >"$S/$1.tmp"
    mv "$S/$1.tmp" "$S/$1"
    echo "generated $1"
  fi
}
for name in mqtt-admin mqtt-emulator mqtt-ingester postgres mongodb proxy-token; do gen "$name"; done
# The URLs: the passwords are base64 without / + =, so they need no escaping. `labhub` is the MongoDB server's
# setup (or root) user, created with the password in `mongodb` on its first start.
[ -s "$S/postgres-url" ] || echo "postgres://postgres:$(cat "$S/postgres")@postgres:5432/${POSTGRES_DB:-lab}" >"$S/postgres-url"
[ -s "$S/mongodb-url" ] || echo "mongodb://labhub:$(cat "$S/mongodb")@mongodb:27017/?authSource=admin" >"$S/mongodb-url"
# Readable by the services' users; the volume is mounted only into the lab's own services, never into notebooks.
chmod 0755 "$S"
chmod 0444 "$S"/*
if [ ! -s "$DATA/dynamic-security.json" ]; then
  mosquitto_ctrl dynsec init "$DATA/dynamic-security.json" admin "$(cat "$S/mqtt-admin")" >/dev/null
  echo "created the dynamic-security admin"
fi
chown -R mosquitto:mosquitto "$DATA"
