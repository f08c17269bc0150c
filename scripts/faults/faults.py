#!/usr/bin/env python3
"""`just faults`: fault-injection scenarios against the release binary, on this machine
only (127.0.0.1), each bounded in time and request count.

    python3 scripts/faults/faults.py [SCENARIO ...]     # all scenarios when none is named
    python3 scripts/faults/faults.py --list

Each scenario prints PASS or FAIL with its figures; the exit status is 1 when any
failed. Logs of every process started go to target/faults/<time>/. Needs
target/release/tickets (`cargo build --release -p http-adapter`), psql, PostgreSQL's
server binaries (initdb, pg_ctl) and the shared PostgreSQL on 127.0.0.1:5432
(`just db`), on which the scenarios create and drop databases named tickets_faults_*.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

import scenario_pg_restart
import scenario_replicas
import scenario_sigkill
import scenario_sigterm
import scenario_startup
import scenario_stream_cross_replica
import scenario_stream_pg_restart
import scenario_webhook_replicas
import scenario_webhook_sigkill
from checks import Verdict
from cluster import SHARED, psql
from context import Context
from service import BINARY, REPO, stop_all

SCENARIOS = {
    module.NAME: module
    for module in (
        scenario_pg_restart,
        scenario_sigterm,
        scenario_sigkill,
        scenario_replicas,
        scenario_startup,
        scenario_webhook_sigkill,
        scenario_webhook_replicas,
        scenario_stream_pg_restart,
        scenario_stream_cross_replica,
    )
}


def sweep_leftovers() -> None:
    """Drops tickets_faults_* databases of runs whose process is gone (killed runs)."""
    rows = psql(
        SHARED, "postgres", "SELECT datname FROM pg_database WHERE datname LIKE 'tickets\\_faults\\_%'"
    )
    for (name,) in rows:
        pid = name.rsplit("_", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            psql(SHARED, "postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=f"any of: {', '.join(SCENARIOS)}")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args()
    if args.list:
        for name, module in SCENARIOS.items():
            print(f"{name:22} {module.TITLE}")
        return 0
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if not BINARY.is_file():
        print(f"faults: {BINARY} is missing; run `cargo build --release -p http-adapter`", file=sys.stderr)
        return 2

    run_dir = REPO / "target" / "faults" / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    print(f"faults: binary {BINARY}, logs in {run_dir}", flush=True)
    sweep_leftovers()
    ctx = Context(run_dir)
    verdicts = []
    try:
        for name in args.scenarios or list(SCENARIOS):
            began = time.monotonic()
            print(f"\n== {name}: {SCENARIOS[name].TITLE}", flush=True)
            try:
                verdict = SCENARIOS[name].run(ctx)
            except Exception as e:  # a scenario that breaks is a failed scenario
                verdict = Verdict(name, SCENARIOS[name].TITLE)
                verdict.check(False, f"the scenario broke: {e!r}")
                traceback.print_exc()
            finally:
                stop_all()
            verdict.figure(f"took {time.monotonic() - began:.1f} s")
            verdicts.append(verdict)
            print(verdict.report(), flush=True)
    finally:
        stop_all()

    print("\n== summary")
    for verdict in verdicts:
        print(f"{'PASS' if verdict.passed else 'FAIL'} {verdict.name}")
    return 0 if all(v.passed for v in verdicts) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
