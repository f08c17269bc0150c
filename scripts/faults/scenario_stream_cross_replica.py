"""Scenario: an event written through one replica reaches a stream open on another.
Two replicas share one database; a staff stream and the customer's own stream are open
on each. The customer writes messages one at a time, alternately through A and B, at
uneven intervals; each message's event is timed from the write's response to its
arrival on the streams of the other replica.

PASS when every event arrives on every stream of the other replica and the slowest
within 1 s (the contract's bound); p50, p99 and max are printed per direction."""

from __future__ import annotations

import random
import time

from checks import Verdict, latency_summary
from client import Client, actors
from cluster import SHARED, scenario_database
from context import Context
from load import created_id
from service import Service
from sse import EventStream, arrival_delays

NAME = "stream-cross-replica"
TITLE = "an event written through replica A reaches a stream on replica B within 1 s"
WRITES_PER_REPLICA = 50
LIMIT = 1.0
# Pauses between writes, uneven so that writes do not keep step with the tail's poll.
PAUSE = (0.02, 0.15)
SEED = 9


def run(ctx: Context) -> Verdict:
    verdict = Verdict(NAME, TITLE)
    rng = random.Random(SEED)
    database = ctx.database(NAME)
    with scenario_database(SHARED, database) as url:
        pair = [Service(ctx.run_dir, f"{NAME}-{label}", url).start() for label in ("a", "b")]
        streams: list[EventStream] = []
        try:
            if not verdict.check(all(s.wait_ready(60) for s in pair), "a replica did not become ready"):
                return verdict
            customer, staff = actors(pair[0].port, "scr", customers=1, staff=1)
            streams = [
                EventStream(f"{who.email.split('-')[1].split('@')[0]}@{replica.name}", replica.port, who)
                for replica in pair
                for who in (staff, customer)
            ]
            for stream in streams:
                stream.start()
            if not verdict.check(all(s.opened.wait(10) for s in streams), "not every stream opened"):
                return verdict
            clients = [Client(replica.port, token=customer.token) for replica in pair]
            opened = clients[0].call("POST", "/tickets", {"topic": "cross-replica", "text": "first"})
            ticket = created_id(opened)
            if not verdict.check(opened.status == 201 and ticket, f"opening the ticket: {opened.status}"):
                return verdict
            # Per writing replica: ((kind, id), when the response arrived).
            writes: list[list[tuple[tuple[str, int], float]]] = [[], []]
            failed = 0
            for n in range(WRITES_PER_REPLICA):
                for via, client in enumerate(clients):
                    reply = client.call(
                        "POST", f"/tickets/{ticket}/messages", {"text": f"message {n} via {via}"}
                    )
                    message = created_id(reply)
                    if reply.status == 201 and message:
                        writes[via].append((("message", message), reply.ended))
                    else:
                        failed += 1
                    time.sleep(rng.uniform(*PAUSE))
            for client in clients:
                client.close()
            # The last write's event, on every stream, or give up after the bound.
            deadline = time.monotonic() + LIMIT + 1
            while time.monotonic() < deadline and not all(_has_all(s, writes) for s in streams):
                time.sleep(0.05)
        finally:
            for stream in streams:
                stream.stop()
            for replica in pair:
                replica.stop()

        verdict.check(failed == 0, f"{failed} writes were not answered 201")
        for via, replica in enumerate(pair):
            for stream in streams:
                if stream.port == replica.port:
                    continue
                delays = arrival_delays(stream.received(), writes[via])
                arrived = [d for d in delays if d is not None]
                early = sum(1 for d in arrived if d < 0)
                verdict.figure(
                    f"written through {replica.name}, on stream {stream.name}: {len(arrived)}/{len(delays)} "
                    f"arrived; delay from the write's response: {latency_summary(arrived)}"
                    + (f" ({early} before the response was read)" if early else "")
                )
                verdict.check(
                    len(arrived) == len(delays),
                    f"{len(delays) - len(arrived)} events never reached {stream.name}",
                )
                verdict.check(
                    max(arrived, default=0) <= LIMIT,
                    f"an event took {max(arrived, default=0) * 1000:.0f} ms to reach {stream.name}, "
                    f"over {LIMIT} s",
                )
    return verdict


def _has_all(stream: EventStream, writes: list[list[tuple[tuple[str, int], float]]]) -> bool:
    delays = arrival_delays(stream.received(), [w for per_replica in writes for w in per_replica])
    return all(d is not None for d in delays)
