"""Scenario: four replicas started at the same moment on an empty database, in several
rounds. Each migration must be applied exactly once (refinery's history, and one
"applied" log line in all), no replica may log a warning or an error, and all four
must serve, with a token from one accepted by the others."""

from __future__ import annotations

import re
import time

from checks import Verdict
from client import Client, login, register
from cluster import SHARED, psql, scenario_database
from context import Context
from service import REPO, Service

NAME = "replicas"
TITLE = "four replicas started at once on an empty database"
REPLICAS = 4
ROUNDS = 3


def expected_versions() -> list[int]:
    return sorted(
        int(m.group(1))
        for path in (REPO / "migrations").glob("*.sql")
        if (m := re.match(r"[VU](\d+)__", path.name))
    )


def run(ctx: Context) -> Verdict:
    verdict = Verdict(NAME, TITLE)
    versions = expected_versions()
    verdict.figure(f"migrations in the repository: versions {versions}")
    for round_no in range(1, ROUNDS + 1):
        database = ctx.database(f"{NAME}_{round_no}")
        with scenario_database(SHARED, database) as url:
            services = [Service(ctx.run_dir, f"{NAME}-{round_no}-{i}", url) for i in range(REPLICAS)]
            try:
                began = time.monotonic()
                for service in services:
                    service.start()
                spread = max(s.started_at for s in services) - began
                ready = [s.wait_ready(60) for s in services]
                ready_after = time.monotonic() - began
                served = _serve_across(services) if all(ready) else False
            finally:
                for service in services:
                    service.stop()
            _judge(verdict, round_no, database, services, versions, spread, ready, ready_after, served)
    return verdict


def _serve_across(services: list[Service]) -> bool:
    """Registers on one replica, logs in on the next and lists tickets on the one after."""
    for i in range(len(services)):
        email = f"replica{i}@faults.example"
        clients = [Client(services[(i + k) % len(services)].port) for k in range(3)]
        try:
            register(clients[0], email)
            token = login(clients[1], email)
            if clients[2].call("GET", "/tickets", token=token).status != 200:
                return False
        except RuntimeError:
            return False
        finally:
            for client in clients:
                client.close()
    return True


def _judge(verdict, round_no, database, services, versions, spread, ready, ready_after, served) -> None:
    history = [
        (int(version), int(count))
        for version, count in psql(
            SHARED,
            database,
            "SELECT version, count(*) FROM refinery_schema_history GROUP BY version ORDER BY version",
        )
    ]
    applied_lines = 0
    complaints = []
    for service in services:
        for record in service.log_records():
            if record.get("message") == "applied database migration":
                applied_lines += 1
            if "raw" in record or record.get("level") in ("WARN", "ERROR"):
                complaints.append(f"{service.name}: {record}")
    verdict.figure(
        f"round {round_no}: {len(services)} replicas spawned within {spread * 1000:.1f} ms, "
        f"ready {sum(ready)}/{len(services)} after {ready_after:.2f} s; history {history}; "
        f"'applied' log lines {applied_lines}; warnings/errors {len(complaints)}; "
        f"served across replicas {served}"
    )
    verdict.check(all(ready), f"round {round_no}: only {sum(ready)} replicas became ready")
    verdict.check(
        [v for v, _ in history] == versions, f"round {round_no}: history versions differ from {versions}"
    )
    verdict.check(all(c == 1 for _, c in history), f"round {round_no}: a migration is recorded twice")
    verdict.check(applied_lines == len(versions), f"round {round_no}: {applied_lines} 'applied' log lines")
    for complaint in complaints[:5]:
        verdict.check(False, f"round {round_no}: log line {complaint}")
    verdict.check(served, f"round {round_no}: the replicas did not all serve")
