#!/usr/bin/env bash
# Makes sure a PostgreSQL server accepts connections on 127.0.0.1:5432 as role
# `postgres` without a password, which is what the default DATABASE_URL and the tests use.
#
#   1. Already accepting connections: nothing to do.
#   2. A Debian cluster on port 5432 is installed but stopped: start it.
#   3. No server at all: `apt-get install postgresql` (via sudo when not root), start it.
# Only when this script started or installed the cluster and the `postgres` role cannot
# log in over TCP does it add `trust` lines for 127.0.0.1 and ::1 to that cluster's
# pg_hba.conf. When DATABASE_URL names another host or port, the server is yours to run
# and this script does nothing.
set -euo pipefail

readonly host=127.0.0.1 port=5432
readonly wait_secs=60

say() { echo "ensure-postgres: $*" >&2; }
die() {
  say "error: $*"
  exit 1
}

as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    die "'$*' needs root, and sudo is not installed; run \`su -c scripts/ensure-postgres.sh\` once, then your command again"
  fi
}

# True when something answers on host:port (pg_isready when the client is installed).
ready() {
  if command -v pg_isready >/dev/null; then
    pg_isready -q -h "$host" -p "$port" -t 2
  else
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
  fi
}

can_connect() {
  PGCONNECT_TIMEOUT=5 psql -X -w -q -h "$host" -p "$port" -U postgres -d postgres \
    -Atc 'SELECT 1' >/dev/null 2>&1
}

# Exits 0 when DATABASE_URL (if set) points at a server other than 127.0.0.1:5432.
url_is_elsewhere() {
  local url=${DATABASE_URL:-}
  [[ -n $url ]] || return 1
  local authority=${url#*://}
  authority=${authority%%[/?]*}
  authority=${authority##*@}
  local url_host url_port
  if [[ $authority == \[* ]]; then # [::1]:5432
    url_host=${authority%%]*}
    url_host=${url_host#[}
    url_port=${authority#*]}
  else
    url_host=${authority%%:*}
    url_port=${authority#"$url_host"}
  fi
  url_port=${url_port#:}
  case $url_host in
    '' | 127.0.0.1 | localhost | ::1) ;;
    *) return 0 ;;
  esac
  [[ ${url_port:-5432} != "$port" ]]
}

apt_install() {
  command -v apt-get >/dev/null ||
    die "no PostgreSQL on $host:$port and no apt-get to install one: install PostgreSQL 13 or later, start it on $host:$port, or set DATABASE_URL"
  say "installing $* with apt-get"
  as_root apt-get update -qq
  # A UTF-8 locale, so that the cluster the package creates uses the UTF8 encoding.
  as_root env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 LC_ALL=C.UTF-8 \
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Prints the newest installed server version that has a cluster `main` on our port.
find_cluster() {
  local conf version conf_port found=()
  for conf in /etc/postgresql/*/main/postgresql.conf; do
    [[ -r $conf ]] || continue
    version=${conf#/etc/postgresql/}
    version=${version%%/*}
    conf_port=$(sed -nE 's/^[[:space:]]*port[[:space:]]*=[[:space:]]*([0-9]+).*/\1/p' "$conf" | tail -n 1)
    [[ ${conf_port:-5432} == "$port" ]] && found+=("$version")
  done
  [[ ${#found[@]} -gt 0 ]] || return 1
  printf '%s\n' "${found[@]}" | sort -V | tail -n 1
}

newest_server_version() {
  local bin
  for bin in /usr/lib/postgresql/*/bin/postgres; do
    [[ -x $bin ]] || continue
    bin=${bin#/usr/lib/postgresql/}
    echo "${bin%%/*}"
  done | sort -V | tail -n 1
}

wait_ready() {
  local version=$1 waited=0
  until ready; do
    if ((waited >= wait_secs)); then
      die "PostgreSQL $version did not accept connections on $host:$port within ${wait_secs}s; see /var/log/postgresql/postgresql-$version-main.log"
    fi
    sleep 1
    waited=$((waited + 1))
  done
}

# Lets `postgres` log in over TCP from this machine without a password (development only).
trust_local_tcp() {
  local version=$1 hba="/etc/postgresql/$1/main/pg_hba.conf"
  local marker='# Added by tickets scripts/ensure-postgres.sh for local development.'
  as_root test -f "$hba" || die "cannot find $hba"
  if ! as_root grep -qF "$marker" "$hba"; then
    say "allowing role postgres to connect from 127.0.0.1 and ::1 without a password ($hba)"
    # pg_hba.conf is read top-down and the first match wins, so the lines go first.
    # shellcheck disable=SC2016 # expanded by the inner shell
    as_root bash -c 'set -e
      tmp=$(mktemp)
      { printf "%s\n" "$2" "host all postgres 127.0.0.1/32 trust" "host all postgres ::1/128 trust" ""; cat "$1"; } >"$tmp"
      cat "$tmp" >"$1"   # keeps the owner and mode of the original
      rm -f "$tmp"' _ "$hba" "$marker"
  fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
}

main() {
  if url_is_elsewhere; then
    say "DATABASE_URL points at another server; not managing a local one"
    return
  fi
  if ready; then
    say "PostgreSQL is accepting connections on $host:$port"
    # scripts/create-database.sh needs the client.
    command -v psql >/dev/null || apt_install postgresql-client
    return
  fi

  local version
  if ! version=$(find_cluster); then
    if [[ -z $(newest_server_version) ]]; then
      apt_install postgresql
    fi
    if ! version=$(find_cluster); then
      version=$(newest_server_version)
      [[ -n $version ]] || die "installing postgresql did not provide a server under /usr/lib/postgresql"
      [[ -z $(ls -A /etc/postgresql/"$version" 2>/dev/null) ]] ||
        die "PostgreSQL $version has clusters, but none on port $port (see pg_lsclusters); start one on $port or set DATABASE_URL"
      say "creating cluster $version/main on port $port"
      as_root pg_createcluster --locale C.UTF-8 --port "$port" "$version" main >/dev/null
    fi
  fi

  # The package starts its cluster only where systemd runs; elsewhere (containers) we do.
  if ! as_root pg_ctlcluster "$version" main status >/dev/null 2>&1; then
    say "starting cluster $version/main"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  fi
  wait_ready "$version"

  if ! can_connect; then
    trust_local_tcp "$version"
    can_connect || die "role postgres still cannot connect to $host:$port without a password; check /etc/postgresql/$version/main/pg_hba.conf"
  fi
  say "PostgreSQL $version is accepting connections on $host:$port"
}

main "$@"
