#!/usr/bin/env bash
# `just bench [default|large|scaling|soak|compare [REV]|events|clean]`: builds the release
# server and the load generator, makes sure PostgreSQL runs, and starts the benchmark from
# the repository's root (see bench/README.md). `compare` also builds the server of REV
# (default 614a372, the last commit before issue 8) from a git worktree.
set -euo pipefail

cd "$(dirname "$0")/.."
mode=${1:-default}
case $mode in
  default | large | scaling | soak | compare | events | clean) ;;
  *)
    echo "bench: unknown mode '$mode' (default, large, scaling, soak, compare, events or clean)" >&2
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

if [[ $mode == compare ]]; then
  rev=${2:-614a372}
  commit=$(git rev-parse --verify --quiet "$rev^{commit}") || {
    echo "bench: '$rev' is not a commit" >&2
    exit 2
  }
  # The baseline's sources in a worktree under bench/data (ignored by git), replaced
  # when it holds another commit; its build in a target directory of its own, kept
  # across revisions so that a rebuild reuses the dependencies, and away from the main
  # one so that nothing there is rebuilt.
  worktree=bench/data/baseline
  if [[ -d $worktree ]] && [[ $(git -C "$worktree" rev-parse HEAD 2>/dev/null) != "$commit" ]]; then
    git worktree remove --force "$worktree"
  fi
  if [[ ! -d $worktree ]]; then
    git worktree prune
    git worktree add --detach "$worktree" "$commit"
  fi
  baseline_target=$PWD/bench/data/baseline-target
  (cd "$worktree" && CARGO_TARGET_DIR=$baseline_target cargo build --release -p http-adapter)
  export BENCH_BASELINE_BIN=$baseline_target/release/tickets
  export BENCH_BASELINE_DIR=$PWD/$worktree
  BENCH_BASELINE_REV=$(git rev-parse --short "$commit")
  export BENCH_BASELINE_REV
fi
# `events` holds BENCH_STREAMS (1,000) connections open in the load generator and as many
# in the server, which inherits this limit: raise the soft limit of open files to the hard
# one where it is lower than that needs (often 1,024).
if (($(ulimit -n) < 4096)); then
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 4096 2>/dev/null || true
fi
exec "$target_dir/release/bench" "$mode"
