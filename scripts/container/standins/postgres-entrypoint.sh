#!/bin/bash
# Entrypoint of the local stand-in for the official postgres:15 image (built by
# scripts/container/base-images.sh when no registry serves the real one). It keeps the
# parts of the official entrypoint that docker/compose.yaml and the container test rely
# on: POSTGRES_PASSWORD (required), POSTGRES_USER and POSTGRES_DB, a first start that
# initialises $PGDATA while listening on the Unix socket only, then the server as the
# postgres user on every address, with password (scram) authentication over TCP.
set -euo pipefail

if [[ ${1:-} != postgres ]]; then
  exec "$@"
fi

if [[ $(id -u) -eq 0 ]]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}

if [[ ! -s $PGDATA/PG_VERSION ]]; then
  if [[ -z ${POSTGRES_PASSWORD:-} ]]; then
    echo "postgres stand-in: POSTGRES_PASSWORD must be set (the official image refuses to start without it too)" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    -D "$PGDATA"
  rm -f "$pwfile"
  printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  if [[ $db != postgres ]]; then
    # Socket only, as in the official image: nothing reaches it over TCP before it is ready.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
    # psql quotes the name (:"db"), in its input only: not in -c.
    psql -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres --set=db="$db" \
      <<<'CREATE DATABASE :"db";'
    pg_ctl -D "$PGDATA" -m fast -w stop
  fi
  echo "postgres stand-in: initialised $PGDATA (database $db)"
fi

exec "$@"
