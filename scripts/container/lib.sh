# Helpers shared by scripts/container/*.sh (sourced, not run): messages, the Docker
# engine and the clients that work with it.
# shellcheck shell=bash

say() { printf '%s\n' "$*"; }
warn() { printf 'container-test: %s\n' "$*" >&2; }
die() {
  warn "error: $*"
  exit 1
}

# The Docker client to use, in $DOCKER (an array: a command and its arguments). The build
# needs BuildKit (docker/Dockerfile uses `RUN --mount=type=cache`): a client with buildx,
# or one older than 23, which still builds with BuildKit when DOCKER_BUILDKIT=1. Newer
# clients without buildx fall back to the legacy builder, which refuses `--mount`; Debian's
# docker.io package installs a 20.10 client as /usr/bin/docker beside any other.
pick_docker_client() {
  local candidates=() c major
  [[ -n ${CT_DOCKER:-} ]] && candidates+=("$CT_DOCKER")
  candidates+=("$(command -v docker || true)" /usr/bin/docker /usr/local/bin/docker)
  for c in "${candidates[@]}"; do
    [[ -n $c && -x $c ]] || continue
    if "$c" buildx version >/dev/null 2>&1; then
      DOCKER=("$c")
      return 0
    fi
    major=$("$c" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)
    if [[ $major =~ ^[0-9]+$ ]] && ((major < 23)); then
      export DOCKER_BUILDKIT=1
      DOCKER=("$c")
      return 0
    fi
  done
  return 1
}

docker_() { "${DOCKER[@]}" "$@"; }

engine_answers() { docker_ info >/dev/null 2>&1; }

# Starts dockerd in the background when no engine answers, as root, with the flags that
# work on machines without a usable iptables or overlayfs (vfs storage, no NAT rules).
# The daemon is left running afterwards so that the next run starts at once.
ensure_engine() {
  pick_docker_client ||
    die "no Docker client that builds with BuildKit (buildx, or a client older than 23). On Debian: apt-get install -y docker.io debootstrap docker-compose"
  engine_answers && return 0
  local dockerd
  dockerd=$(command -v dockerd || true)
  if [[ -z $dockerd ]]; then
    die "no Docker engine answers and dockerd is not installed. On Debian, as root: apt-get install -y docker.io debootstrap docker-compose"
  fi
  if [[ $EUID -ne 0 ]]; then
    die "no Docker engine answers; start one (as root: $dockerd ${CT_DOCKERD_ARGS:---storage-driver=vfs --iptables=false --ip-masq=false} &), or add yourself to the docker group"
  fi
  local log=${CT_DOCKERD_LOG:-/var/log/dockerd-container-test.log}
  # shellcheck disable=SC2086 # CT_DOCKERD_ARGS is a list of flags
  setsid "$dockerd" ${CT_DOCKERD_ARGS:---storage-driver=vfs --iptables=false --ip-masq=false} \
    >>"$log" 2>&1 </dev/null &
  local pid=$! i
  for ((i = 0; i < 60; i++)); do
    if engine_answers; then
      say "started dockerd (pid $pid, log $log); it stays running after this test"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || die "dockerd exited at start; see $log"
    sleep 1
  done
  die "dockerd (pid $pid) did not answer within 60 s; see $log"
}

# Compose: the v2 plugin (`docker compose`) when present, else the Python docker-compose
# 1.29 that Debian packages. docker/compose.yaml is written for both.
# shellcheck disable=SC2034 # COMPOSE is for the scripts that source this file
pick_compose() {
  if docker_ compose version >/dev/null 2>&1; then
    COMPOSE=("${DOCKER[@]}" compose)
  elif command -v docker-compose >/dev/null; then
    COMPOSE=(docker-compose)
  else
    return 1
  fi
}

image_exists() { docker_ image inspect "$1" >/dev/null 2>&1; }
