"""Scenario: PostgreSQL restarted (on a private cluster, as pg-restart does: a fast
stop, then a crash) under open `GET /events` streams while tickets, messages and
internal notes are written. Half of the clients also drop their connection during each
outage and again a second after it, and reconnect with the last id they received (one
of them in the query, `?last_event_id=`, the others in the `Last-Event-ID` header), so
that what was written meanwhile must come from the log. Every client keeps
reconnecting whenever its stream ends.

PASS when each client received exactly the events of `ticket_events` that it may see
(staff all; a customer their own tickets' but no `note.created`): none missing, none
twice, none it may not see, in id order; and, before the first outage, each event
reached a staff stream within 1 s of its write's answer. How long events took around
the outages is printed."""

from __future__ import annotations

import time

from checks import Verdict, latency_summary, tally
from client import actors
from cluster import PrivateCluster, psql
from context import Context
from load import STAFF_WRITES, WRITES, Load, Outcome
from scenario_pg_restart import OUTAGES
from service import Service
from sse import EventStream, arrival_delays, visible_events

NAME = "stream-pg-restart"
TITLE = "PostgreSQL restarted under open event streams"
CUSTOMERS, STAFF = 4, 2
WARM_UP, AFTER = 3.0, 6.0
# Dropped connections wait this long before resuming, so that events pile up to be
# caught up from the log.
DROP_PAUSE = 0.5
# The contract's bound from a write to its event on every stream, while PostgreSQL is up.
STEADY_LIMIT = 1.0
# How long the clients may take to receive the last events once the writes stopped.
SETTLE = 20.0


def run(ctx: Context) -> Verdict:
    verdict = Verdict(NAME, TITLE)
    with PrivateCluster(ctx.run_dir, NAME) as pg:
        pg.start()
        database = ctx.database(NAME)
        psql(pg.server, "postgres", f'CREATE DATABASE "{database}"')
        verdict.figure(f"private PostgreSQL on 127.0.0.1:{pg.server.port}; outages {OUTAGES}")
        with Service(ctx.run_dir, NAME, pg.server.url(database)) as service:
            if not verdict.check(service.wait_ready(60), "the service did not become ready"):
                return verdict
            team = actors(service.port, "spr", customers=CUSTOMERS, staff=STAFF)
            streams = [
                EventStream(
                    f"{'staff' if actor.is_staff else 'customer'}{i}",
                    service.port,
                    actor,
                    resume_in_query=i == 3,
                )
                for i, actor in enumerate(team)
            ]
            droppers = streams[1::2]
            for stream in streams:
                stream.start()
            # Opened before anything is written: each must receive every event it may see.
            opened = all(stream.opened.wait(10) for stream in streams)
            if not verdict.check(opened, "not every stream opened"):
                _stop(streams)
                return verdict

            load = Load(service.port, "spr", duration=WARM_UP + sum(d + AFTER for _, d in OUTAGES) + 30)
            for actor in team:
                load.add(actor, STAFF_WRITES if actor.is_staff else WRITES, pause=0.05)
            load.start()
            time.sleep(WARM_UP)
            outages = []
            for mode, down in OUTAGES:
                outages.append((mode, time.monotonic()))
                pg.stop(mode)
                time.sleep(down / 2)
                for stream in droppers:
                    stream.drop(DROP_PAUSE)
                time.sleep(down / 2)
                pg.start()
                time.sleep(1.0)
                for stream in droppers:
                    stream.drop(DROP_PAUSE)
                time.sleep(AFTER - 1.0)
            load.stop()
            expected = {stream.name: visible_events(pg.server, database, stream.actor) for stream in streams}
            for stream in streams:
                if expected[stream.name]:
                    stream.wait_for(expected[stream.name][-1], SETTLE)
            _stop(streams)

        verdict.figure(f"writes: {tally(load.requests())}")
        for stream in streams:
            _judge_stream(verdict, stream, expected[stream.name], stream in droppers)
        # The first staff stream, which is never dropped.
        _recovery(verdict, streams[CUSTOMERS], load.requests(), outages)
    return verdict


def _stop(streams: list[EventStream]) -> None:
    for stream in streams:
        stream.stop()


def _judge_stream(verdict: Verdict, stream: EventStream, expected: list[int], dropper: bool) -> None:
    received = [event.id for event in stream.received()]
    missing = sorted(set(expected) - set(received))
    unexpected = sorted(set(received) - set(expected))
    twice = len(received) - len(set(received))
    disorder = sum(1 for a, b in zip(received, received[1:]) if b <= a)
    resumed = sum(1 for event in stream.received() if event.connection > 1)
    label = f"[{stream.name}{', drops' if dropper else ''}]"
    verdict.figure(
        f"{label} received {len(received)} of {len(expected)} events; missing {len(missing)}, twice {twice}, "
        f"not its own {len(unexpected)}, out of order {disorder}; connections {stream.connections} "
        f"(ends: {dict(stream.ends) or 'none'}; refused: {dict(stream.refusals) or 'none'}); "
        f"{resumed} events came on resumed connections"
    )
    verdict.check(bool(expected), f"{label} had no event to receive")
    verdict.check(not missing, f"{label} missed {len(missing)} events, e.g. {missing[:10]}")
    verdict.check(twice == 0, f"{label} received {twice} events twice")
    verdict.check(
        not unexpected, f"{label} received {len(unexpected)} events it may not see: {unexpected[:10]}"
    )
    verdict.check(disorder == 0, f"{label} received {disorder} events out of id order")
    if dropper:
        verdict.check(stream.connections > 1 and resumed > 0, f"{label} never resumed a dropped stream")


def _recovery(verdict: Verdict, staff: EventStream, requests: list[Outcome], outages) -> None:
    """How long after their write's answer the events reached a staff stream that was
    never dropped: before the first outage, where the contract's second applies, and from
    each outage's stop to the next (a write answered just before a stop may reach the
    stream only once the service's connection to the log is back). Those are figures."""
    writes = [o for o in requests if o.write is not None and o.write.id]
    bounds = [stopped for _, stopped in outages] + [float("inf")]

    def delays(began: float, ended: float) -> list[float | None]:
        chosen = [o for o in writes if began <= o.reply.started < ended]
        return arrival_delays(staff.received(), [((o.write.kind, o.write.id), o.reply.ended) for o in chosen])

    def summary(found: list[float | None]) -> str:
        arrived = [d for d in found if d is not None]
        return f"{len(arrived)}/{len(found)} arrived, {latency_summary(arrived)}"

    steady = [d for d in delays(0.0, bounds[0]) if d is not None]
    verdict.figure(f"[before the outages] writes to {staff.name}: {summary(steady)}")
    verdict.check(
        bool(steady) and max(steady) <= STEADY_LIMIT,
        f"before any outage an event took {max(steady, default=0) * 1000:.0f} ms to reach {staff.name}",
    )
    for (mode, _), began, ended in zip(outages, bounds, bounds[1:]):
        verdict.figure(
            f"[{mode}] writes from the stop to the next outage (or the end), to {staff.name}: "
            f"{summary(delays(began, ended))}"
        )
