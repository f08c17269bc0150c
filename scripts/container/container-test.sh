#!/usr/bin/env bash
# Proves the container deployment end to end (`just container-test`), printing PASS or
# FAIL per check, then a summary with the time of each phase:
#
#   1. engine       a Docker engine answers (dockerd is started when none does and we
#                   are root), a client that builds with BuildKit, and Compose;
#   2. base images  debian:bookworm-slim, rust:1-bookworm, postgres:15, haproxy:2.6:
#                   pulled, or local stand-ins under the same names (base-images.sh);
#   3. build        docker/Dockerfile as it is: cargo build --release --locked inside,
#                   crates fetched from the registry; the image's size;
#   4. image        on a user-defined bridge network with a postgres:15 container: runs
#                   as a non-root user, as PID 1, on a read-only root file system
#                   without capabilities, answers /health/ready, Docker reports it
#                   healthy, serves the README's curl flow, and `docker stop` drains
#                   (readiness 503, Connection: close) and exits 0 within the grace period;
#   5. compose      docker/compose.yaml with 3 replicas behind HAProxy: the README flow
#                   through the proxy, requests spread over the replicas, one replica
#                   stopped under a steady load with no failed request, then
#                   `down -v` leaves nothing behind.
#
#   scripts/container/container-test.sh [--rebuild-base] [--keep]
#
# --rebuild-base  build the stand-in base images again (they are cached otherwise)
# --keep          leave the containers, networks, volumes and the image for a look
# Settings: CT_BUILD_NETWORK (network of the build's RUN steps, default `host`: where
# dockerd runs without NAT, as with --ip-masq=false, bridged containers do not reach
# crates.io), CT_LOG_DIR (default target/container-test). It removes what it made
# (containers, networks, volumes, the tickets:container-test image) and keeps the base
# images and the build cache, so that a rerun takes a few minutes.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=scripts/container/lib.sh
source "$here/lib.sh"
# shellcheck source=scripts/container/flow.sh
source "$here/flow.sh"

rebuild_base=() keep=false
for arg in "$@"; do
  case $arg in
  --rebuild-base) rebuild_base=(--rebuild-base) ;;
  --keep) keep=true ;;
  -h | --help)
    sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  *) die "unknown argument $arg (see --help)" ;;
  esac
done

readonly NAME=tickets-ct                    # prefix of containers and network, compose project
readonly LABEL=org.tickets.container-test   # on every container and network made here
readonly IMAGE=tickets:container-test
readonly STAFF_KEY=local-staff-key-0123456789
readonly GRACE=35 DRAIN=5                   # compose's stop_grace_period, server.drain_secs
log_dir=${CT_LOG_DIR:-$root/target/container-test}
mkdir -p "$log_dir"
rm -f "$log_dir"/*.log "$log_dir"/*.json
exec > >(tee "$log_dir/output.log") 2>&1

# --- checks and phases ------------------------------------------------------------------

passed=0 failed=0
phase_names=() phase_secs=() phase_results=()
phase_start="" phase_failed_before=0

pass() {
  passed=$((passed + 1))
  say "PASS  $*"
}
fail() {
  failed=$((failed + 1))
  say "FAIL  $*"
}

end_phase() {
  [[ -n $phase_start ]] || return 0
  phase_secs+=($((SECONDS - phase_start)))
  if ((failed > phase_failed_before)); then phase_results+=(FAIL); else phase_results+=(ok); fi
  phase_start=""
}

phase() {
  end_phase
  phase_names+=("$1")
  phase_start=$SECONDS
  phase_failed_before=$failed
  say ""
  say "== $1"
}

skip_phase() {
  phase "$1"
  fail "$1: skipped, $2"
}

# --- helpers ----------------------------------------------------------------------------

# Seconds since $1 (an $EPOCHREALTIME), with one decimal.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# wait_for SECONDS COMMAND...: runs COMMAND every second until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}

ready_at() { [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1/health/ready") == 200 ]]; }
health_of() { docker_ inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1" 2>/dev/null; }
is_healthy() { [[ $(health_of "$1") == healthy ]]; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
random_secret() { head -c 48 /dev/urandom | base64 | tr -d '\n'; }

compose_() {
  "${COMPOSE[@]}" -f "$root/docker/compose.yaml" -p "$NAME" "$@"
}

app_replicas() {
  docker_ ps -q --filter "label=com.docker.compose.project=$NAME" \
    --filter label=com.docker.compose.service=app "$@"
}

all_replicas_healthy() {
  local c
  for c in $(app_replicas); do is_healthy "$c" || return 1; done
}

# How many requests with X-Request-Id PREFIX-* a container logged as served.
served() { docker_ logs "$1" 2>&1 | grep "$2-" | grep -c 'request served'; }

cleanup() {
  $keep && {
    say "--keep: left containers, networks and volumes of $NAME, and $IMAGE"
    return 0
  }
  # Without a Docker client there is nothing to clean, and docker_ would run its
  # arguments (`ps`, `network`, `image`) as commands of their own.
  ((${#DOCKER[@]} > 0)) || return 0
  local ids=()
  if [[ ${#COMPOSE[@]} -gt 0 ]]; then
    compose_ down -v --remove-orphans --timeout 40 >>"$log_dir/cleanup.log" 2>&1
  fi
  mapfile -t ids < <(docker_ ps -aq --filter "label=$LABEL")
  ((${#ids[@]} == 0)) || docker_ rm -f -v "${ids[@]}" >>"$log_dir/cleanup.log" 2>&1
  mapfile -t ids < <(docker_ network ls -q --filter "label=$LABEL")
  ((${#ids[@]} == 0)) || docker_ network rm "${ids[@]}" >>"$log_dir/cleanup.log" 2>&1
  docker_ image rm "$IMAGE" >>"$log_dir/cleanup.log" 2>&1
  return 0
}

DOCKER=() COMPOSE=()
cleaned=false
on_exit() { $cleaned || [[ ${#DOCKER[@]} -eq 0 ]] || cleanup; }
trap on_exit EXIT
trap 'say "interrupted"; exit 130' INT TERM

started_at=$(date -u '+%Y-%m-%d %H:%M UTC')
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z $(git -C "$root" status --porcelain 2>/dev/null) ]] || commit="$commit + uncommitted changes"
say "container-test of $root at $commit, $started_at; logs in $log_dir"

# --- 1. engine --------------------------------------------------------------------------

phase engine
# ensure_engine exits on failure, with what is missing; run it in a subshell to report.
if (ensure_engine) && pick_docker_client && engine_answers; then
  engine=$(docker_ info -f 'Docker {{.ServerVersion}}, storage {{.Driver}}' 2>/dev/null)
  pass "engine: $engine; client ${DOCKER[0]} ($(docker_ version -f '{{.Client.Version}}' 2>/dev/null))${DOCKER_BUILDKIT:+ with DOCKER_BUILDKIT=1}"
  if pick_compose; then
    pass "compose: ${COMPOSE[*]} $("${COMPOSE[@]}" version --short 2>/dev/null || true)"
  else
    fail "compose: neither \`docker compose\` nor docker-compose is installed (Debian: apt-get install -y docker-compose)"
  fi
else
  fail "engine: no usable Docker engine (see the error above)"
fi
for tool in curl jq python3 git; do
  command -v "$tool" >/dev/null || fail "engine: $tool is missing (Debian: apt-get install -y $tool)"
done

# --- 2. base images -----------------------------------------------------------------------

if ((failed > 0)); then
  skip_phase "base images" "no engine"
else
  phase "base images"
  if "$here/base-images.sh" "${rebuild_base[@]}"; then
    pass "base images: debian:bookworm-slim, rust:1-bookworm, postgres:15, haproxy:2.6"
  else
    fail "base images: see the error above"
  fi
fi

# --- 3. build -----------------------------------------------------------------------------

built=false
if ((failed > 0)); then
  skip_phase build "no engine or base images"
else
  phase build
  t=$EPOCHREALTIME
  if docker_ build --network "${CT_BUILD_NETWORK:-host}" --progress=plain -f "$root/docker/Dockerfile" \
    -t "$IMAGE" "$root" >"$log_dir/build.log" 2>&1; then
    built=true
    if grep -q 'Finished .release. profile' "$log_dir/build.log"; then
      how="cargo build --release --locked compiled $(grep -c '^#[0-9]* [0-9.]*  *Compiling ' "$log_dir/build.log") crates"
    else
      how="the cargo step was cached: same sources as the last build"
    fi
    pass "build: docker/Dockerfile built in $(since "$t") s ($how)"
    size=$(docker_ image inspect -f '{{.Size}}' "$IMAGE")
    size_mb=$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }')
    if ((size < 100000000)); then
      pass "build: image size $size_mb MB (goal: under 100 MB)"
    else
      fail "build: image size $size_mb MB (goal: under 100 MB)"
    fi
  else
    fail "build: docker build failed; the end of $log_dir/build.log:"
    tail -n 25 "$log_dir/build.log"
  fi
fi

# --- 4. the image, alone with PostgreSQL ----------------------------------------------------

check_image() {
  local net=$NAME-net db=$NAME-db app=$NAME-app pw api port t
  pw=$(random_secret)
  docker_ network create --label "$LABEL" "$net" >/dev/null || {
    fail "image: could not create the network $net"
    return
  }
  docker_ run -d --name "$db" --label "$LABEL" --network "$net" \
    -e POSTGRES_PASSWORD="$pw" -e POSTGRES_DB=tickets postgres:15 >/dev/null
  if ! wait_for 60 docker_ exec "$db" pg_isready -h 127.0.0.1 -U postgres -d tickets; then
    fail "image: postgres:15 did not become ready in 60 s"
    docker_ logs "$db" 2>&1 | tail -n 20
    return
  fi
  # --read-only needs no tmpfs: the service writes nothing to its file system.
  docker_ run -d --name "$app" --label "$LABEL" --network "$net" -p 127.0.0.1::8080 \
    --read-only --cap-drop ALL --security-opt no-new-privileges \
    -e DATABASE_URL="postgres://postgres:$pw@$db:5432/tickets" \
    -e TICKETS__AUTH__JWT_SECRET="$(random_secret)" \
    -e TICKETS__AUTH__STAFF_API_KEY="$STAFF_KEY" "$IMAGE" >/dev/null
  port=$(docker_ port "$app" 8080/tcp | head -n1 | sed 's/.*://')
  api=http://127.0.0.1:$port
  t=$EPOCHREALTIME
  if wait_for 60 ready_at "$api"; then
    pass "image: GET /health/ready answers 200 after $(since "$t") s (read-only root, no capabilities)"
  else
    fail "image: no 200 from $api/health/ready within 60 s"
    docker_ logs "$app" 2>&1 | tail -n 20
    return
  fi

  local user uid cmdline
  user=$(docker_ inspect -f '{{.Config.User}}' "$IMAGE")
  uid=$(docker_ exec "$app" sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' /proc/1/status)
  if [[ -n $uid && $uid != 0 ]]; then
    pass "image: runs as a non-root user (USER $user, uid $uid)"
  else
    fail "image: PID 1 runs as uid '${uid:-?}' (USER '$user')"
  fi
  cmdline=$(docker_ exec "$app" cat /proc/1/cmdline | tr '\0' ' ')
  if [[ $cmdline == "/app/tickets serve " ]]; then
    pass "image: PID 1 is the service itself (/app/tickets serve), so signals reach it"
  else
    fail "image: PID 1 is '$cmdline', not /app/tickets"
  fi
  if docker_ exec "$app" bash -c ': >/app/written' 2>/dev/null ||
    [[ $(docker_ inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$app") != true ]]; then
    fail "image: the root file system is writable"
  else
    pass "image: root file system read-only (writing /app/written fails)"
  fi

  t=$EPOCHREALTIME
  if wait_for 60 is_healthy "$app"; then
    pass "image: Docker reports it healthy (HEALTHCHECK) $(since "$t") s after ready"
  else
    fail "image: Docker health is '$(health_of "$app")' after 60 s"
  fi

  readme_flow "image: README flow" "$api" "$STAFF_KEY"

  # docker stop: SIGTERM to PID 1, SIGKILL after the grace period.
  local stop_pid stopped_in exit_code
  t=$EPOCHREALTIME
  docker_ stop -t "$GRACE" "$app" >/dev/null &
  stop_pid=$!
  # The signal reaches PID 1 only after the docker client and dockerd have acted on
  # it, which took two seconds on a loaded machine: so readiness is polled for as long
  # as the drain lasts, not read once after a fixed wait.
  local draining_after=
  while awk -v s="$(since "$t")" -v d="$DRAIN" 'BEGIN { exit !(s < d) }'; do
    http GET "$api/health/ready"
    if [[ $STATUS == 503 && $(header connection) == close ]]; then
      draining_after=$(since "$t")
      break
    fi
    sleep 0.2
  done
  if [[ -n $draining_after ]]; then
    pass "image: draining $draining_after s after docker stop: /health/ready 503 with Connection: close"
  else
    fail "image: ${DRAIN} s after docker stop, /health/ready still gave $STATUS, Connection: '$(header connection)'"
  fi
  wait "$stop_pid"
  stopped_in=$(since "$t")
  exit_code=$(docker_ inspect -f '{{.State.ExitCode}}' "$app")
  if [[ $exit_code == 0 ]] && awk -v s="$stopped_in" -v d="$DRAIN" -v g="$GRACE" 'BEGIN { exit !(s >= d - 0.5 && s < g) }'; then
    pass "image: docker stop: exit code 0 after $stopped_in s (drain ${DRAIN} s, grace period ${GRACE} s)"
  else
    fail "image: docker stop: exit code $exit_code after $stopped_in s (expected 0, between ${DRAIN} and ${GRACE} s)"
  fi
  if docker_ logs "$app" 2>&1 | grep -q 'signal.*SIGTERM' && docker_ logs "$app" 2>&1 | grep -q 'stopped'; then
    pass "image: its log shows SIGTERM received, the drain, and a clean stop"
  else
    fail "image: its log lacks 'stop signal received' SIGTERM or 'stopped'"
  fi
  docker_ logs "$app" >"$log_dir/image-app.log" 2>&1
  docker_ rm -f -v "$app" "$db" >/dev/null
  docker_ network rm "$net" >/dev/null
}

if $built; then
  phase "image checks"
  check_image
else
  skip_phase "image checks" "no image"
fi

# --- 5. compose: 3 replicas behind HAProxy ----------------------------------------------------

check_compose() {
  local port api t replicas victim victim_name counts load
  port=$(free_port)
  api=http://127.0.0.1:$port
  export TICKETS_JWT_SECRET TICKETS_STAFF_API_KEY=$STAFF_KEY TICKETS_IMAGE=$IMAGE \
    TICKETS_HTTP_PORT=127.0.0.1:$port
  TICKETS_JWT_SECRET=$(random_secret)
  t=$EPOCHREALTIME
  if ! compose_ up -d --no-build --scale app=3 >"$log_dir/compose-up.log" 2>&1; then
    fail "compose: up failed; the end of $log_dir/compose-up.log:"
    tail -n 20 "$log_dir/compose-up.log"
    return
  fi
  replicas=$(app_replicas | wc -l)
  if ((replicas == 3)) && wait_for 90 ready_at "$api" && wait_for 60 all_replicas_healthy; then
    pass "compose: db, $replicas app replicas (healthy) and the proxy up in $(since "$t") s; the proxy answers on $api"
  else
    fail "compose: $replicas app replicas; the proxy or the replicas are not ready after 150 s"
    compose_ ps
    return
  fi

  readme_flow "compose: README flow through the proxy" "$api" "$STAFF_KEY"
  [[ -n $FLOW_TOKEN && -n $FLOW_TICKET ]] || return

  load=(python3 "$here/load.py" --url "$api" --token "$FLOW_TOKEN" --ticket "$FLOW_TICKET")
  "${load[@]}" --requests 300 --prefix ct-spread >"$log_dir/load-spread.json"
  local c n low=0
  counts=()
  for c in $(app_replicas); do
    n=$(served "$c" ct-spread)
    counts+=("$(docker_ inspect -f '{{.Name}}' "$c" | tr -d /)=$n")
    ((n >= 30)) || low=1
  done
  if ((low == 0)) && [[ $(jq .failed "$log_dir/load-spread.json") == 0 ]]; then
    pass "compose: 300 requests spread over the replicas: ${counts[*]}"
  else
    fail "compose: 300 requests, spread ${counts[*]} (each should serve 30 or more); $(jq -c '{failed, statuses}' "$log_dir/load-spread.json")"
  fi

  # Stop one replica as an orchestrator would (SIGTERM, grace period), under a steady
  # stream of requests that starts before and ends well after it.
  victim=$(app_replicas | head -n1)
  victim_name=$(docker_ inspect -f '{{.Name}}' "$victim" | tr -d /)
  "${load[@]}" --seconds 30 --prefix ct-stop >"$log_dir/load-stop.json" &
  local load_pid=$! stopped_in exit_code
  sleep 6
  t=$EPOCHREALTIME
  docker_ stop -t "$GRACE" "$victim" >/dev/null
  stopped_in=$(since "$t")
  wait "$load_pid"
  exit_code=$(docker_ inspect -f '{{.State.ExitCode}}' "$victim")
  if [[ $exit_code == 0 ]]; then
    pass "compose: stopped $victim_name under load: exit code 0 after $stopped_in s (grace ${GRACE} s)"
  else
    fail "compose: stopped $victim_name under load: exit code $exit_code after $stopped_in s"
  fi
  counts=()
  for c in $(app_replicas -a); do
    counts+=("$(docker_ inspect -f '{{.Name}}' "$c" | tr -d /)=$(served "$c" ct-stop)")
  done
  local retried summary
  retried=$(compose_ logs --no-color proxy 2>/dev/null | grep 'rid=ct-stop-' | grep -c 'retries=+\?[1-9]')
  summary=$(jq -r '"\(.requests) requests in \(.seconds) s (\(.per_second)/s), \(.failed) failed, statuses \(.statuses | tostring), slowest \(.slowest.seconds) s"' "$log_dir/load-stop.json")
  if [[ $(jq .failed "$log_dir/load-stop.json") == 0 ]]; then
    pass "compose: no failed request while a replica stopped: $summary; served ${counts[*]}; $retried retried by the proxy"
  else
    fail "compose: failed requests while a replica stopped: $summary; first failures: $(jq -c '.failures[:3]' "$log_dir/load-stop.json")"
  fi
  if ready_at "$api"; then
    pass "compose: the proxy still answers with $(app_replicas | wc -l) replicas left"
  else
    fail "compose: the proxy does not answer /health/ready after the stop"
  fi

  compose_ logs --no-color >"$log_dir/compose.log" 2>&1
  t=$EPOCHREALTIME
  compose_ down -v --remove-orphans --timeout 40 >"$log_dir/compose-down.log" 2>&1
  local left
  left=$(
    docker_ ps -aq --filter "label=com.docker.compose.project=$NAME"
    docker_ network ls -q --filter "label=com.docker.compose.project=$NAME"
    docker_ volume ls -q --filter "label=com.docker.compose.project=$NAME"
  )
  if [[ -z $left ]]; then
    pass "compose: down -v in $(since "$t") s left no container, network or volume"
  else
    fail "compose: down -v left: $(tr '\n' ' ' <<<"$left")"
  fi
}

if $built && [[ ${#COMPOSE[@]} -gt 0 ]]; then
  phase "compose (3 replicas + haproxy)"
  check_compose
else
  skip_phase "compose (3 replicas + haproxy)" "no image or no compose"
fi

# --- cleanup and summary ----------------------------------------------------------------------

phase cleanup
cleanup
cleaned=true
end_phase

total=0
for s in "${phase_secs[@]}"; do total=$((total + s)); done
{
  say ""
  say "== container-test summary: $started_at, commit $commit"
  [[ -n ${engine:-} ]] && say "engine: $engine; compose: ${COMPOSE[*]:-none}"
  if [[ ${#DOCKER[@]} -gt 0 ]]; then
    origins=""
    for image in debian:bookworm-slim rust:1-bookworm postgres:15 haproxy:2.6; do
      label=$(docker_ image inspect -f '{{index .Config.Labels "org.tickets.stand-in"}}' "$image" 2>/dev/null || echo missing)
      case $label in missing) o=missing ;; "" | "<no value>") o=official ;; *) o=stand-in ;; esac
      origins+="$image ($o), "
    done
    say "base images: ${origins%, }"
  fi
  [[ -n ${size_mb:-} ]] && say "image $IMAGE: $size_mb MB"
  printf '%-30s %6s  %s\n' phase seconds result
  for i in "${!phase_names[@]}"; do
    printf '%-30s %6s  %s\n' "${phase_names[$i]}" "${phase_secs[$i]}" "${phase_results[$i]}"
  done
  printf '%-30s %6s\n' total "$total"
  say "checks: $passed passed, $failed failed"
} | tee "$log_dir/summary.txt"
((failed == 0))
