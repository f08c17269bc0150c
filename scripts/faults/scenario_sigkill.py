"""Scenario: the server killed with SIGKILL during ticket creation, several times on
one database at seeded random moments. Afterwards no half-created ticket may remain
(each has its first message, each `tickets_count` is right), every acknowledged ticket
is there, and a restarted server serves the same database."""

from __future__ import annotations

import random
import signal
import time

from checks import Verdict, check_invariants, check_writes, tally
from client import actors, once
from cluster import SHARED, scenario_database
from context import Context
from load import CREATE_ONLY, Load
from service import Service

NAME = "sigkill"
TITLE = "SIGKILL during ticket creation"
ROUNDS = 3
WORKERS = 16
SEED = 4


def run(ctx: Context) -> Verdict:
    verdict = Verdict(NAME, TITLE)
    rng = random.Random(SEED)
    database = ctx.database(NAME)
    acknowledged = []
    with scenario_database(SHARED, database) as url:
        team = None
        for round_no in range(1, ROUNDS + 1):
            service = Service(ctx.run_dir, f"{NAME}-{round_no}", url).start()
            try:
                if not verdict.check(service.wait_ready(60), f"round {round_no}: the service did not start"):
                    return verdict
                # Tokens outlive the process: the secret is fixed and the users persist.
                team = team or actors(service.port, "sk", customers=WORKERS, staff=0)
                load = Load(service.port, f"sk{round_no}", duration=30, seed=round_no)
                for actor in team:
                    load.add(actor, CREATE_ONLY)
                load.start()
                time.sleep(rng.uniform(1.0, 2.5))
                killed = time.monotonic()
                service.send(signal.SIGKILL)
                load.stop()
                code = service.wait_exit(10)
            finally:
                service.stop()
            requests = load.requests()
            in_flight = [o for o in requests if o.reply.started < killed < o.reply.ended]
            verdict.figure(
                f"round {round_no}: killed after {killed - load.started:.2f} s "
                f"(exit {code}); {tally(requests)}; in flight at the kill {len(in_flight)}"
            )
            verdict.check(bool(in_flight), f"round {round_no}: no creation was in flight at the kill")
            acknowledged += load.acknowledged()
        check_writes(verdict, SHARED, database, acknowledged)
        check_invariants(verdict, SHARED, database)
        _check_restart(ctx, verdict, url, team)
    return verdict


def _check_restart(ctx: Context, verdict: Verdict, url: str, team) -> None:
    with Service(ctx.run_dir, f"{NAME}-restart", url) as service:
        ready = service.wait_ready(60)
        opened = None
        if ready and team:
            opened = once(
                service.port,
                "POST",
                "/tickets",
                {"topic": "after the kills", "text": "still works"},
                token=team[0].token,
            )
        verdict.figure(
            f"restarted on the same database: ready {ready}, a new ticket "
            f"{opened.status if opened else 'not tried'}"
        )
        verdict.check(
            ready and opened is not None and opened.status == 201,
            "the server does not serve the database after the kills",
        )
