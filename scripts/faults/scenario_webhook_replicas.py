"""Scenario: two replicas delivering one subscription's events to one receiver. The
receiver answers each attempt after 200 ms, so that two attempts of one delivery made
at once would overlap there, and answers 500 to the first attempt of every fourth
event, so that retries are claimed again from the shared outbox, by either replica.

PASS when no delivery ever has two attempts in flight at once (per `webhook-id`, each
attempt starts after the previous one was answered), every event of the log arrives
signed and answered 2xx, the outbox drains, and the attempts recorded in
`webhook_attempts` are the ones the receiver saw (nothing was killed, so every attempt
was recorded)."""

from __future__ import annotations

import time
from collections import Counter

from checks import Verdict, tally
from cluster import SHARED, psql, scenario_database
from context import Context
from webhooks import (
    LEASE_SECS,
    Receipt,
    Receiver,
    judge_deliveries,
    judge_outbox,
    replica_settings,
    replicas,
    subscribe,
    superuser,
    wait_drained,
    write_through,
)

NAME = "webhook-two-replicas"
TITLE = "two replicas, one receiver: no attempt of a delivery twice at once"
RECEIVER_DELAY = 0.2
FAIL_FIRST_EVERY = 4
CONCURRENCY = 8
WRITERS_PER_REPLICA = 2
LOAD_SECS = 6.0
DRAIN_TIMEOUT = 60.0


def run(ctx: Context) -> Verdict:
    verdict = Verdict(NAME, TITLE)
    database = ctx.database(NAME)
    with scenario_database(SHARED, database) as url:
        with (
            replicas(ctx.run_dir, NAME, url, replica_settings(CONCURRENCY)) as pair,
            Receiver(pair, delay=RECEIVER_DELAY, fail_first_every=FAIL_FIRST_EVERY) as receiver,
        ):
            root = superuser(ctx.run_dir, url, pair[0].port, "root@faults.example")
            webhook, secret = subscribe(pair[0].port, root, receiver.url)
            loads = write_through(pair, "whr", WRITERS_PER_REPLICA, pause=0.1, staff_on=0)
            time.sleep(LOAD_SECS)
            for load in loads:
                load.stop()
            drained, took, counts = wait_drained(SHARED, database, DRAIN_TIMEOUT)
            receipts = receiver.snapshot()

        verdict.figure(
            f"receiver answers after {RECEIVER_DELAY * 1000:.0f} ms, 500 to the first attempt of every "
            f"{FAIL_FIRST_EVERY}th event; {CONCURRENCY} attempts at once per replica; lease {LEASE_SECS} s"
        )
        for replica, load in zip(pair, loads):
            verdict.figure(f"writes through {replica.name}: {tally(load.requests())}")
        judge_outbox(verdict, drained, took, counts)
        grouped = judge_deliveries(verdict, receipts, secret, SHARED, database)

        senders = Counter(r.sender for r in receipts)
        verdict.figure(f"attempts by sender: {dict(senders)}")
        verdict.check(
            all(senders[r.name] > 0 for r in pair), "the replicas did not share the work: one made no attempt"
        )
        retried = [attempts for attempts in grouped.by_event.values() if len(attempts) > 1]
        switched = sum(1 for attempts in retried if len({a.sender for a in attempts}) > 1)
        verdict.figure(
            f"events attempted more than once: {len(retried)}, of which by both replicas: {switched}"
        )
        verdict.check(bool(retried), "no retry was made (the receiver's 500s did not apply)")

        overlaps = [pair_ for attempts in grouped.by_event.values() for pair_ in _overlaps(attempts)]
        verdict.figure(
            f"deliveries with two attempts in flight at once: {len(overlaps)}; peak attempts in flight at "
            f"the receiver: {_peak(receipts)}"
        )
        for first, second in overlaps[:5]:
            verdict.check(
                False,
                f"{first.webhook_id}: an attempt by {second.sender} began "
                f"{(first.ended - second.started) * 1000:.0f} ms before the one by {first.sender} "
                "was answered",
            )
        verdict.check(len(overlaps) <= 5, f"... and {len(overlaps) - 5} more overlapping attempts")

        recorded = Counter(
            {
                int(event): int(n)
                for event, n in psql(
                    SHARED,
                    database,
                    "SELECT event_id, count(*) FROM webhook_attempts "
                    f"WHERE webhook_id = {webhook} GROUP BY event_id",
                )
            }
        )
        seen = Counter({event: len(attempts) for event, attempts in grouped.by_event.items()})
        differ = sorted(k for k in set(recorded) | set(seen) if recorded[k] != seen[k])
        verdict.figure(
            f"attempts recorded in webhook_attempts {sum(recorded.values())}, received {sum(seen.values())}; "
            f"deliveries where they differ: {len(differ)}"
        )
        verdict.check(not differ, f"recorded and received attempts differ for events {differ[:5]}")
    return verdict


def _overlaps(attempts: list[Receipt]) -> list[tuple[Receipt, Receipt]]:
    """Consecutive attempts of one delivery where the later began before the earlier
    was answered."""
    ordered = sorted(attempts, key=lambda r: r.started)
    return [
        (first, second)
        for first, second in zip(ordered, ordered[1:])
        if first.ended is None or second.started < first.ended
    ]


def _peak(receipts: list[Receipt]) -> int:
    moments = sorted([(r.started, 1) for r in receipts] + [(r.ended or r.started, -1) for r in receipts])
    peak = current = 0
    for _, step in moments:
        current += step
        peak = max(peak, current)
    return peak
