"""Scenario: PostgreSQL restarted under load (on a private cluster, never the shared one),
twice: a fast shutdown (`pg_ctl stop -m fast`), then a crash (`-m immediate`, which
leaves crash recovery to the restart).

While it is down, every request must fail fast with 503 (the slowest 503 well within
the pool's wait timeout) and readiness must say 503; once it is back, the service must
recover by itself; every write answered 2xx must be in the database afterwards."""

from __future__ import annotations

import time
from dataclasses import dataclass

from checks import Verdict, check_invariants, check_writes, latency_summary, millis, tally
from client import actors
from cluster import PrivateCluster, psql
from context import Context
from load import MIXED, READINESS, STAFF_MIXED, Load, Outcome
from service import Service

NAME = "pg-restart"
TITLE = "PostgreSQL restarted under load"
# (pg_ctl stop mode, seconds down)
OUTAGES = (("fast", 5.0), ("immediate", 5.0))
WARM_UP, AFTER = 4.0, 8.0
WAIT_TIMEOUT_MS = 2000
# "Fast" means within this share of the pool's wait timeout.
FAST_SHARE = 0.5
RECOVERY_LIMIT = 5.0
# The last seconds of load before the next outage (or the end) must be all 2xx.
TAIL = 3.0


@dataclass
class Outage:
    mode: str
    stop_began: float
    down_from: float
    down_until: float
    up_at: float
    # When the load after this outage ends: the next outage's stop, or the end of load.
    settled_by: float = 0.0

    def holds(self, o: Outcome) -> bool:
        return o.reply.started >= self.down_from and o.reply.ended <= self.down_until


def run(ctx: Context) -> Verdict:
    verdict = Verdict(NAME, TITLE)
    with PrivateCluster(ctx.run_dir, NAME) as pg:
        pg.start()
        database = ctx.database(NAME)
        psql(pg.server, "postgres", f'CREATE DATABASE "{database}"')
        verdict.figure(
            f"private PostgreSQL on 127.0.0.1:{pg.server.port} ({pg.root}); "
            f"pool wait timeout {WAIT_TIMEOUT_MS} ms"
        )
        with Service(
            ctx.run_dir, NAME, pg.server.url(database), database__pool_wait_timeout_ms=WAIT_TIMEOUT_MS
        ) as service:
            if not verdict.check(service.wait_ready(60), "the service did not become ready"):
                return verdict
            team = actors(service.port, "pgr", customers=6, staff=1)
            planned = WARM_UP + sum(down + AFTER for _, down in OUTAGES)
            load = Load(service.port, "pgr", duration=planned + 30)
            for actor in team:
                load.add(actor, STAFF_MIXED if actor.is_staff else MIXED, pause=0.01)
            load.add(None, READINESS, pause=0.1)
            load.start()
            time.sleep(WARM_UP)
            outages = []
            for mode, down in OUTAGES:
                stop_began = time.monotonic()
                pg.stop(mode)
                down_from = time.monotonic()
                time.sleep(down)
                down_until = time.monotonic()
                pg.start()
                outages.append(Outage(mode, stop_began, down_from, down_until, time.monotonic()))
                time.sleep(AFTER)
            for outage, following in zip(outages, outages[1:]):
                outage.settled_by = following.stop_began
            outages[-1].settled_by = time.monotonic()
            load.stop()
            alive = service.alive()
        verdict.check(alive, "the service exited during an outage")
        requests = load.requests()
        total = tally(requests)
        verdict.figure(f"all requests: {total}")
        bad = sum(total.other.values())
        verdict.check(bad == 0, f"{bad} requests got neither 2xx nor 503: {dict(total.other)}")
        failed = [o.reply.latency for o in requests if o.reply.status == 503]
        verdict.figure(f"latency of all 503s: {latency_summary(failed)}")
        limit = WAIT_TIMEOUT_MS / 1000 * FAST_SHARE
        verdict.check(
            bool(failed) and max(failed) <= limit,
            f"the slowest 503 took {millis(max(failed, default=0))}, over {millis(limit)} "
            f"({FAST_SHARE:.0%} of the pool's wait timeout)",
        )
        for outage in outages:
            _judge_outage(verdict, outage, requests, [o for o in load.outcomes if o.op == "ready"])
        check_writes(verdict, pg.server, database, load.acknowledged())
        check_invariants(verdict, pg.server, database)
    return verdict


def _judge_outage(verdict: Verdict, outage: Outage, requests: list[Outcome], probes: list[Outcome]) -> None:
    label = f"[{outage.mode}]"
    verdict.figure(
        f"{label} PostgreSQL stop took {millis(outage.down_from - outage.stop_began)}, down "
        f"{outage.down_until - outage.down_from:.1f} s, start took {millis(outage.up_at - outage.down_until)}"
    )
    down = [o for o in requests if outage.holds(o)]
    down_tally = tally(down)
    slowest = max((o.reply.latency for o in down), default=0.0)
    verdict.figure(f"{label} while PostgreSQL was down: {down_tally}; slowest {millis(slowest)}")
    verdict.check(len(down) >= 20, f"{label} only {len(down)} requests fell inside the outage")
    verdict.check(down_tally.unavailable == len(down), f"{label} requests while down got other than 503")

    down_probes = [o for o in probes if outage.holds(o)]
    ready_down = sum(1 for o in down_probes if o.reply.status == 503)
    verdict.figure(f"{label} /health/ready while down: {ready_down}/{len(down_probes)} answered 503")
    verdict.check(
        bool(down_probes) and ready_down == len(down_probes), f"{label} /health/ready did not say 503"
    )

    after = [o for o in requests if outage.down_until <= o.reply.started < outage.settled_by]
    recovered = [o.reply.ended for o in after if o.reply.ok]
    back = [
        o.reply.ended
        for o in probes
        if outage.up_at <= o.reply.started < outage.settled_by and o.reply.status == 200
    ]
    if verdict.check(bool(recovered) and bool(back), f"{label} the service did not recover by itself"):
        # PostgreSQL accepts connections a little before `pg_ctl start -w` returns, so
        # the figures count from when the start was issued.
        delay = min(recovered) - outage.up_at
        verdict.figure(
            f"{label} recovery without restart: first 2xx {min(recovered) - outage.down_until:.2f} s and "
            f"/health/ready 200 {min(back) - outage.down_until:.2f} s after `pg_ctl start` was issued"
        )
        verdict.check(delay <= RECOVERY_LIMIT, f"{label} the first 2xx came {delay:.1f} s after the restart")
    # Ended before the next outage began, so that it cannot have failed because of it.
    tail = tally(
        [
            o
            for o in after
            if o.reply.started >= outage.settled_by - TAIL and o.reply.ended <= outage.settled_by
        ]
    )
    verdict.figure(f"{label} last {TAIL:.0f} s before the next event: {tail}")
    verdict.check(tail.sent > 0 and tail.ok == tail.sent, f"{label} requests still failed long after")
