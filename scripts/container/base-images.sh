#!/usr/bin/env bash
# Makes sure the images that docker/Dockerfile and docker/compose.yaml start FROM exist
# locally: debian:bookworm-slim, rust:1-bookworm, postgres:15 and haproxy:2.6.
#
#   scripts/container/base-images.sh [--rebuild-base]
#
# An image already present is kept (so reruns are fast) unless --rebuild-base. A missing
# one is pulled from the registry when one answers; when none does (machines that reach
# Debian's packages but no container registry), a local stand-in is built under the SAME
# name, so that the Dockerfile and compose.yaml stay exactly what a user runs:
#   debian:bookworm-slim  debootstrap --variant=minbase bookworm, trimmed like the slim image
#   rust:1-bookworm       that + gcc, make, libc6-dev, ca-certificates + this machine's Rust
#                         toolchain, with RUSTUP_HOME, CARGO_HOME and PATH as upstream sets
#                         them, trusting this machine's CA bundle
#   postgres:15           that + Debian's postgresql-15 + standins/postgres-entrypoint.sh
#   haproxy:2.6           that + Debian's haproxy (2.6), run as the official image runs it
# Stand-ins carry the label org.tickets.stand-in. Building them needs root and debootstrap.
#
# Settings: CT_DEBIAN_MIRROR (default: the one in /etc/apt/sources*, else deb.debian.org),
# CT_PULL_TIMEOUT (seconds for one pull, default 300).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/container/lib.sh
source "$here/lib.sh"

readonly IMAGES=(debian:bookworm-slim rust:1-bookworm postgres:15 haproxy:2.6)
readonly STANDIN_LABEL=org.tickets.stand-in

rebuild=false
for arg in "$@"; do
  case $arg in
  --rebuild-base) rebuild=true ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  *) die "unknown argument $arg (expected --rebuild-base)" ;;
  esac
done

ensure_engine

# "official" or "stand-in" for an image present locally.
image_origin() {
  local label
  label=$(docker_ image inspect -f "{{index .Config.Labels \"$STANDIN_LABEL\"}}" "$1" 2>/dev/null || true)
  if [[ -n $label && $label != '<no value>' ]]; then
    echo stand-in
  else
    echo official
  fi
}

# The Debian mirror this machine's apt uses (the first non-security `debian` URI).
debian_mirror() {
  if [[ -n ${CT_DEBIAN_MIRROR:-} ]]; then
    echo "$CT_DEBIAN_MIRROR"
    return
  fi
  local uri
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -v '^[[:space:]]*#' | grep -oE '(https?://[^ ]+/debian)/?( |$)' | grep -v security | head -n1 | tr -d ' ' || true)
  echo "${uri%/}" | grep . || echo http://deb.debian.org/debian
}

work=""
mounted=()
cleanup() {
  local m
  for m in "${mounted[@]}"; do umount "$m" 2>/dev/null || true; done
  if [[ -n $work ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT

# The slim root file system, made once per run and copied for each derived image.
slim_rootfs() {
  [[ -d $work/slim ]] && return 0
  [[ $EUID -eq 0 ]] || die "building stand-in base images needs root (debootstrap, chroot); no registry served the official ones"
  command -v debootstrap >/dev/null ||
    die "no registry serves the base images and debootstrap is missing: apt-get install -y debootstrap"
  local mirror security dir=$work/slim
  mirror=$(debian_mirror)
  security="${mirror%/debian}/debian-security"
  say "  debootstrap --variant=minbase bookworm from $mirror (about 2 minutes)"
  debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    die "debootstrap failed; its log: $(tail -n 5 "$work/debootstrap.log")"
  # What the official image configures: the three suites, and apt/dpkg leaving out
  # documentation, manuals, translations and package caches.
  rm -f "$dir/etc/apt/sources.list"
  cat >"$dir/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cat >"$dir/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
EOF
  cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
EOF
  find "$dir/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
  rm -rf "$dir"/usr/share/{man,info,groff,lintian,locale}/*
  strip_rootfs "$dir"
}

# What no image should carry: the build machine's name and resolver, apt's lists.
strip_rootfs() {
  rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb \
    "$1"/var/log/apt/* "$1"/var/log/dpkg.log "$1"/tmp/* "$1"/root/.bash_history
  rm -f "$1/etc/hostname" "$1/etc/resolv.conf" "$1/usr/sbin/policy-rc.d"
}

# Runs a command inside a copy of the slim root file system, with the network (apt).
in_chroot() {
  local dir=$1
  shift
  cp /etc/resolv.conf "$dir/etc/resolv.conf"
  # No service may start inside the build (postinst scripts ask invoke-rc.d).
  printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
  chmod +x "$dir/usr/sbin/policy-rc.d"
  mount -t proc proc "$dir/proc"
  mounted+=("$dir/proc")
  local status=0
  chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 bash -euo pipefail -c "$*" >>"$work/chroot.log" 2>&1 || status=$?
  umount "$dir/proc"
  unset 'mounted[-1]'
  ((status == 0)) || die "in the $(basename "$dir") stand-in, '$*' failed; the end of its log: $(tail -n 5 "$work/chroot.log")"
}

derived_rootfs() {
  slim_rootfs
  rm -rf "${work:?}/$1"
  cp -a "$work/slim" "$work/$1"
}

# Imports a root file system as NAME with Dockerfile-like changes. STOPSIGNAL is not
# among what `docker import` accepts, so an image that needs one gets it from a build of
# a metadata-only Dockerfile (no RUN: no network, no new layer).
import_rootfs() {
  local dir=$1 name=$2 stopsignal=$3
  shift 3
  local changes=(--change "LABEL $STANDIN_LABEL=\"built by scripts/container/base-images.sh\"")
  local c
  for c in "$@"; do changes+=(--change "$c"); done
  strip_rootfs "$dir"
  if [[ -z $stopsignal ]]; then
    tar -C "$dir" -c . | docker_ import "${changes[@]}" - "$name" >/dev/null
  else
    local raw="tickets-container-test/rootfs:${name//[:\/]/-}"
    tar -C "$dir" -c . | docker_ import "${changes[@]}" - "$raw" >/dev/null
    printf 'FROM %s\nSTOPSIGNAL %s\n' "$raw" "$stopsignal" |
      docker_ build --quiet -t "$name" - >/dev/null
    docker_ rmi "$raw" >/dev/null
  fi
  rm -rf "$dir"
}

build_debian() {
  slim_rootfs
  cp -a "$work/slim" "$work/debian"
  import_rootfs "$work/debian" debian:bookworm-slim "" 'CMD ["bash"]'
}

build_rust() {
  local sysroot toolchain version
  sysroot=$(rustc --print sysroot 2>/dev/null) ||
    die "the rust:1-bookworm stand-in copies this machine's Rust toolchain, and rustc is not on the PATH"
  toolchain=$(basename "$sysroot")
  version=$(rustc --version | cut -d' ' -f2)
  derived_rootfs rust
  local dir=$work/rust
  # make: the server's allocator (tikv-jemalloc-sys) builds jemalloc with it, as the
  # official image, which has it, does.
  in_chroot "$dir" 'apt-get update && apt-get install -y --no-install-recommends gcc make libc6-dev ca-certificates && apt-get clean'
  # cargo fetches crates over HTTPS from inside the build, and trusts what this machine
  # trusts: some networks reach crates.io only through a TLS-inspecting proxy whose CA
  # is in the machine's bundle and in no image's.
  cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$dir/etc/ssl/certs/ca-certificates.crt"
  # The toolchain without its documentation (about 800 MB), as rustup's minimal profile.
  mkdir -p "$dir/usr/local/rustup/toolchains/$toolchain" "$dir/usr/local/cargo/bin"
  tar -C "$sysroot" --exclude=./share/doc -c . | tar -C "$dir/usr/local/rustup/toolchains/$toolchain" -x
  local bin
  for bin in "$sysroot"/bin/*; do
    ln -s "/usr/local/rustup/toolchains/$toolchain/bin/$(basename "$bin")" "$dir/usr/local/cargo/bin/"
  done
  chmod -R a+rwX "$dir/usr/local/cargo"
  import_rootfs "$dir" rust:1-bookworm "" \
    'ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "ENV RUST_VERSION=$version" 'CMD ["bash"]'
}

build_postgres() {
  derived_rootfs postgres
  local dir=$work/postgres
  # No cluster from the package: the entrypoint initialises $PGDATA on first start. The
  # sample configuration listens everywhere, as the official image's does.
  in_chroot "$dir" 'apt-get update && apt-get install -y --no-install-recommends postgresql-common'
  sed -ri 's/^#?\s*create_main_cluster.*/create_main_cluster = false/' \
    "$dir/etc/postgresql-common/createcluster.conf"
  in_chroot "$dir" 'apt-get install -y --no-install-recommends postgresql-15 && apt-get clean \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
    && chmod 3777 /var/run/postgresql'
  sed -ri "s/^#?(listen_addresses)\s*=\s*\S+.*/\1 = '*'/" \
    "$dir/usr/share/postgresql/15/postgresql.conf.sample"
  install -m 0755 "$here/standins/postgres-entrypoint.sh" "$dir/usr/local/bin/docker-entrypoint.sh"
  # SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for every client to leave.
  import_rootfs "$dir" postgres:15 SIGINT \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/15/bin PGDATA=/var/lib/postgresql/data LANG=C.UTF-8 PG_MAJOR=15' \
    'VOLUME /var/lib/postgresql/data' 'EXPOSE 5432' \
    'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["postgres"]'
}

build_haproxy() {
  derived_rootfs haproxy
  local dir=$work/haproxy
  in_chroot "$dir" 'apt-get update && apt-get install -y --no-install-recommends haproxy \
    && mkdir -p /usr/local/etc/haproxy && apt-get clean'
  # As the official image: the configuration in /usr/local/etc/haproxy, the haproxy user,
  # master-worker in the foreground (its entrypoint adds -W -db), SIGUSR1 (soft stop).
  import_rootfs "$dir" haproxy:2.6 SIGUSR1 'USER haproxy' 'WORKDIR /var/lib/haproxy' \
    'CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]'
}

# A registry that refuses answers at once; one that does not answer at all costs one
# timeout, after which the other images do not try it.
registry_silent=false
for image in "${IMAGES[@]}"; do
  if ! $rebuild && image_exists "$image"; then
    say "  $image: present ($(image_origin "$image"))"
    continue
  fi
  if ! $registry_silent; then
    status=0
    timeout "${CT_PULL_TIMEOUT:-300}" "${DOCKER[@]}" pull -q "$image" >/dev/null 2>&1 || status=$?
    if ((status == 0)); then
      say "  $image: pulled (official)"
      continue
    fi
    if ((status == 124)); then
      registry_silent=true
      say "  $image: the pull did not finish in ${CT_PULL_TIMEOUT:-300} s; not trying the registry again"
    fi
  fi
  [[ -n $work ]] || work=$(mktemp -d "${TMPDIR:-/var/tmp}/tickets-base-images.XXXXXX")
  started=$SECONDS
  case $image in
  debian:*) build_debian ;;
  rust:*) build_rust ;;
  postgres:*) build_postgres ;;
  haproxy:*) build_haproxy ;;
  esac
  say "  $image: no registry served it; built a stand-in in $((SECONDS - started)) s"
done
