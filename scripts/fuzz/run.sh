#!/usr/bin/env bash
# Schema-based fuzzing (`just fuzz`): runs schemathesis, with every check and the
# stateful phase, against a release build of the service on a free port of 127.0.0.1
# and a fresh database, as four identities: anonymous, a customer, a staff member and a
# superuser (the only one the webhook routes serve). Passes when no identity has a
# failure and no response was a 5xx.
#
#   scripts/fuzz/run.sh
#
# Environment (all optional):
#   FUZZ_DATABASE_URL   the throwaway database, created afresh and dropped at the end
#                       (default postgres://postgres@127.0.0.1:5432/tickets_fuzz)
#   FUZZ_MAX_EXAMPLES   test cases per operation and phase (default 100)
#   FUZZ_TIME_LIMIT     seconds one identity's run may take before it is stopped (default 600)
#   FUZZ_SEED           schemathesis's seed, to repeat a run (default: random)
# Reports (HAR of every request, JUnit) go to target/fuzz/<identity>/.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

readonly SCHEMATHESIS_VERSION=4.32.5
venv=$root/.venv-fuzz
database_url=${FUZZ_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tickets_fuzz}
admin_url=${database_url%/*}/postgres
database_name=${database_url##*/}
max_examples=${FUZZ_MAX_EXAMPLES:-100}
time_limit=${FUZZ_TIME_LIMIT:-600}
out=$root/target/fuzz
cache=$root/target/fuzz-cache

log() { echo "fuzz: $*" >&2; }

# --- tools ------------------------------------------------------------------------
if [[ ! -x $venv/bin/schemathesis ]] ||
  [[ $("$venv/bin/schemathesis" --version 2>/dev/null) != *"$SCHEMATHESIS_VERSION"* ]]; then
  log "installing schemathesis $SCHEMATHESIS_VERSION into .venv-fuzz"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
python=$venv/bin/python

scripts/ensure-postgres.sh
log "building the release binary"
cargo build --release --bin tickets
rm -rf "$out"
mkdir -p "$out" "$cache"

# --- a fresh database and a server on a free port -----------------------------------
psql_admin() { PGCONNECT_TIMEOUT=10 psql -X -w -q -v ON_ERROR_STOP=1 "$admin_url" "$@"; }
drop_database() {
  psql_admin -v name="$database_name" >/dev/null <<'SQL'
SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', :'name') \gexec
SQL
}
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then
    if kill -0 "$server_pid" 2>/dev/null; then
      # SIGINT: stop without SIGTERM's drain, which serves load balancers.
      kill -INT "$server_pid" 2>/dev/null || true
      wait "$server_pid" 2>/dev/null || true
    else
      local code=0
      wait "$server_pid" 2>/dev/null || code=$?
      log "the server had stopped before the end of the run (exit status $code); see target/fuzz/server.log"
    fi
  fi
  drop_database || log "could not drop database $database_name"
}
trap cleanup EXIT
drop_database
scripts/create-database.sh "$database_url"

binary=${CARGO_TARGET_DIR:-target}/release/tickets
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
staff_key=$("$python" -c 'import secrets; print(secrets.token_urlsafe(24))')
# bcrypt at its lowest cost, and login throttling out of reach: the fuzzer registers
# and logs in thousands of times, and must reach the login logic rather than a 429.
# Webhook deliveries never run (no worker at all with a concurrency of 0; a worker would
# also start one right after each write): the fuzzer subscribes URLs of hosts it
# invents, and this run must send nothing beyond 127.0.0.1, not even a DNS query. The
# webhook routes are fuzzed all the same; the deliveries have their own tests and
# `just faults` scenarios.
DATABASE_URL=$database_url \
  TICKETS_ENV=development \
  TICKETS__SERVER__HOST=127.0.0.1 \
  TICKETS__SERVER__PORT=$port \
  TICKETS__AUTH__JWT_SECRET=$("$python" -c 'import secrets; print(secrets.token_urlsafe(48))') \
  TICKETS__AUTH__STAFF_API_KEY=$staff_key \
  TICKETS__AUTH__BCRYPT_COST=4 \
  TICKETS__AUTH__LOGIN_MAX_FAILURES_PER_ACCOUNT=1000000 \
  TICKETS__AUTH__LOGIN_MAX_FAILURES_PER_ADDRESS=1000000 \
  TICKETS__WEBHOOKS__CONCURRENCY=0 \
  RUST_LOG=${RUST_LOG:-warn,actix_server=info} \
  "$binary" serve >"$out/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 120); do
  curl -fs "$base/health/ready" >/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$out/server.log" >&2; exit 1; }
  sleep 0.5
done
curl -fs "$base/health/ready" >/dev/null || { log "the server did not become ready"; exit 1; }
log "server on $base (log: target/fuzz/server.log)"

# --- identities ---------------------------------------------------------------------
customer_token=$("$python" "$here/identities.py" "$base" customer)
staff_token=$("$python" "$here/identities.py" "$base" staff "$staff_key")
superuser_token=$("$python" "$here/identities.py" "$base" superuser "$binary" "$database_url")

# --- the runs -----------------------------------------------------------------------
status=0
run() {
  local identity=$1
  shift
  log "schemathesis as $identity"
  local seed_args=()
  [[ -n ${FUZZ_SEED:-} ]] && seed_args=(--seed "$FUZZ_SEED")
  mkdir -p "$out/$identity"
  # `timeout` bounds the run in time; --max-examples bounds it in requests. Schemathesis
  # keeps the failures it found in .schemathesis/ of its working directory and replays
  # them first next time: target/fuzz-cache survives between runs, and git ignores it.
  if ! (cd "$cache" && SCHEMATHESIS_HOOKS=$here/hooks.py FUZZ_WAIVER_LOG=$out/$identity/waived.txt \
    timeout --signal=INT --kill-after=30 "$time_limit" \
    "$venv/bin/schemathesis" --config-file "$here/schemathesis.toml" run "$base/openapi.json" \
    --checks all --max-examples "$max_examples" "${seed_args[@]}" \
    --report har,junit --report-dir "$out/$identity" "$@"); then
    status=1
  fi
}
# A stream of GET /events never ends, so every request that opens one would wait for
# the request timeout and count as a failure: the identities that may open one leave it
# out. The anonymous run keeps it (it is answered 401 at once).
no_stream=(--exclude-operation-id event_stream)
run anonymous
run customer "${no_stream[@]}" -H "Authorization: Bearer $customer_token"
run staff "${no_stream[@]}" -H "Authorization: Bearer $staff_token"
run superuser "${no_stream[@]}" -H "Authorization: Bearer $superuser_token"

"$python" "$here/summary.py" "$out" anonymous customer staff superuser || status=1
exit "$status"
