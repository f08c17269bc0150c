#!/usr/bin/env bash
# Creates the database named in a PostgreSQL URL unless it exists, connecting to the
# `postgres` database of the same server with the same credentials.
#
#   scripts/create-database.sh [URL]    (default: $DATABASE_URL, else the service's default)
set -euo pipefail

url=${1:-${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tickets}}

die() {
  echo "create-database: error: $*" >&2
  exit 1
}

command -v psql >/dev/null || die "psql not found; run scripts/ensure-postgres.sh or install postgresql-client"

without_query=${url%%\?*}
query=${url#"$without_query"} # "" or "?…"
scheme=${without_query%%://*}
rest=${without_query#*://}
[[ $without_query == *://* && $rest == */* && -n ${rest#*/} ]] ||
  die "cannot find a database name in the URL (expected postgres://user@host:port/name)"
encoded_name=${rest#*/}
name=$(printf '%b' "${encoded_name//%/\\x}") # percent-decoding
admin_url="$scheme://${rest%%/*}/postgres$query"

# psql's :'name' and %I quote the name, whatever characters it holds.
if ! out=$(PGCONNECT_TIMEOUT=10 psql -X -w -v ON_ERROR_STOP=1 -v name="$name" "$admin_url" 2>&1 <<'SQL'
SELECT format('CREATE DATABASE %I', :'name')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
SQL
); then
  hint=""
  if [[ $out == *password* || $out == *authentication* ]]; then
    # A server that was already running (e.g. Debian's, with its default scram-sha-256
    # for TCP) wants a password: scripts/ensure-postgres.sh only sets up trust on a
    # cluster it starts itself.
    hint=" (put the user's password in DATABASE_URL in .env, e.g. postgres://postgres:secret@127.0.0.1:5432/tickets)"
  fi
  die "could not create database \"$name\": $out$hint"
fi
if [[ $out == *'CREATE DATABASE'* ]]; then
  echo "create-database: created database \"$name\"" >&2
else
  echo "create-database: database \"$name\" exists" >&2
fi
