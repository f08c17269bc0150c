"""Scenario: one of two replicas killed with SIGKILL while it has webhook deliveries in
flight. Tickets and messages are written through both replicas to a subscription of
every event; the receiver answers slowly, so that both replicas always have attempts
under way and the outbox a backlog. Once the receiver holds attempts of replica A, A
is killed; writing goes on through B, then the outbox must drain.

PASS when every event of the log arrived with a valid signature (checked here with
hmac, not with the service's code) and a 2xx answer, and every duplicate (an attempt
of A that A never recorded, made again by B once A's lease ended) carries the same
`webhook-id` as its first copy."""

from __future__ import annotations

import signal
import time

from checks import Verdict, tally
from cluster import SHARED, scenario_database
from context import Context
from webhooks import (
    LEASE_SECS,
    Receiver,
    judge_deliveries,
    judge_outbox,
    outbox,
    replica_settings,
    replicas,
    subscribe,
    superuser,
    wait_drained,
    write_through,
)

NAME = "webhook-sigkill"
TITLE = "SIGKILL of a replica with webhook deliveries in flight"
# The receiver's answer time, and attempts per replica at once: 8 / 0.25 s = 32
# deliveries a second each, fewer than the load writes, so that a backlog builds.
RECEIVER_DELAY = 0.25
CONCURRENCY = 8
WRITERS_PER_REPLICA = 3
WARM_UP, AFTER_KILL = 3.0, 4.0
# How long the killed replica may go without an attempt in flight before the kill is
# called off.
KILL_WAIT = 10.0
# Drained within: the killed replica's leases, the backlog, and a margin.
DRAIN_TIMEOUT = LEASE_SECS + 60.0


def run(ctx: Context) -> Verdict:
    verdict = Verdict(NAME, TITLE)
    database = ctx.database(NAME)
    with scenario_database(SHARED, database) as url:
        with (
            replicas(ctx.run_dir, NAME, url, replica_settings(CONCURRENCY)) as pair,
            Receiver(pair, delay=RECEIVER_DELAY) as receiver,
        ):
            doomed, survivor = pair
            root = superuser(ctx.run_dir, url, survivor.port, "root@faults.example")
            _, secret = subscribe(survivor.port, root, receiver.url)
            loads = write_through(pair, "whk", WRITERS_PER_REPLICA, pause=0.05, staff_on=1)
            time.sleep(WARM_UP)

            # Kill while the receiver holds attempts of the doomed replica.
            deadline = time.monotonic() + KILL_WAIT
            while not receiver.in_flight(doomed.name) and time.monotonic() < deadline:
                time.sleep(0.01)
            killed = time.monotonic()
            doomed.send(signal.SIGKILL)
            loads[0].stop()
            code = doomed.wait_exit(10)
            at_kill = outbox(SHARED, database)
            time.sleep(AFTER_KILL)
            loads[1].stop()
            writes_ended = time.monotonic()
            drained, took, counts = wait_drained(SHARED, database, DRAIN_TIMEOUT)
            receipts = receiver.snapshot()

        # Attempts of the killed replica answered only after the kill: it can have
        # recorded none of them, so each must be made again by the survivor.
        cut = [r for r in receipts if r.sender == doomed.name and r.ended is not None and r.ended > killed]

        verdict.figure(
            f"receiver answers after {RECEIVER_DELAY * 1000:.0f} ms; {CONCURRENCY} attempts at once per "
            f"replica; lease {LEASE_SECS} s"
        )
        for replica, load in zip(pair, loads):
            verdict.figure(f"writes through {replica.name}: {tally(load.requests())}")
        verdict.figure(
            f"killed {doomed.name} {killed - loads[0].started:.1f} s into the load (exit {code}) with "
            f"{len(cut)} attempts in flight at the receiver; outbox then: {at_kill['pending']} pending, "
            f"{at_kill['delivered']} delivered"
        )
        verdict.check(bool(cut), f"{doomed.name} had no attempt in flight at the kill")
        judge_outbox(verdict, drained, took, counts)
        grouped = judge_deliveries(verdict, receipts, secret, SHARED, database)

        by_sender = {r.name: sum(1 for x in receipts if x.sender == r.name) for r in pair}
        verdict.figure(f"attempts received by sender: {by_sender}")
        # The attempts cut by the kill: each must have come again, from the survivor.
        cut_ids = {r.webhook_id for r in cut}
        again = [
            min(x.started for x in attempts if x.started > killed)
            for attempts in grouped.by_event.values()
            if attempts[0].webhook_id in cut_ids and any(x.started > killed for x in attempts)
        ]
        verdict.figure(
            f"attempts cut by the kill made again: {len(again)}/{len(cut_ids)}, "
            f"{min(again, default=killed) - killed:.1f} to "
            f"{max(again, default=killed) - killed:.1f} s after it; "
            f"last delivery {max((r.started for r in receipts), default=killed) - writes_ended:.1f} s after "
            f"the writes ended"
        )
        verdict.check(len(again) == len(cut_ids), "an attempt cut by the kill was never made again")
    return verdict
