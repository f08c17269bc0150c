#!/usr/bin/env bash
# `just bench [default|large|scaling|soak|clean]`: builds the release server and the load
# generator, makes sure PostgreSQL runs, and starts the benchmark from the repository's
# root (see bench/README.md).
set -euo pipefail

cd "$(dirname "$0")/.."
mode=${1:-default}
case $mode in
  default | large | scaling | soak | clean) ;;
  *)
    echo "bench: unknown mode '$mode' (default, large, scaling, soak or clean)" >&2
    exit 2
    ;;
esac

scripts/ensure-postgres.sh
if ! command -v psql >/dev/null; then
  echo "bench: psql is missing; install PostgreSQL's client tools (Debian: postgresql-client)" >&2
  exit 1
fi

# Built one package at a time, as `just build` does, so that neither build changes the
# features (and so the artifacts) the other uses in the shared target directory.
cargo build --release -p http-adapter
cargo build --release -p bench
target_dir=${CARGO_TARGET_DIR:-target}
export BENCH_SERVER_BIN=${BENCH_SERVER_BIN:-$target_dir/release/tickets}
exec "$target_dir/release/bench" "$mode"
