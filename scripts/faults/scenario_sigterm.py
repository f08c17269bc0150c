"""Scenario: SIGTERM under load, in four runs on two workers:

- writes: many concurrent writes (bcrypt cost 4);
- slow-logins: logins at bcrypt cost 12 (hashed two at a time, so they queue) beside writes;
- idle-keepalive: idle keep-alive connections, as a client's pool or a proxy holds them,
  each sending a new ticket just before the signal;
- one-worker-idle: the same on the connections of one worker only, after a warm-up that
  made both workers open database connections, so that the other worker, idle at the
  signal, stops at once while tickets are still being written.

Requests sent before the signal must all get a 2xx response (no reset, no close without
an answer); the clients then stop sending, as behind a load balancer; the process must
exit 0 within the shutdown timeout (which includes the drain: see
crates/http/src/shutdown.rs); every acknowledged write must be in the database.

Without the drain, idle-keepalive failed: tickets arriving on idle keep-alive connections
within about a millisecond of the signal were closed unanswered by the stopping server."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from functools import partial

from checks import Verdict, check_invariants, check_writes, tally
from client import Client, actors, once
from cluster import SHARED, psql, scenario_database
from context import Context
from load import LOGINS, WRITES, Load, Outcome, Write, created_id
from service import Service

NAME = "sigterm"
TITLE = "SIGTERM under load"
SHUTDOWN_TIMEOUT = 10
# The first part of the shutdown timeout, when the server still serves in full but fails
# readiness and closes each connection after its response.
DRAIN = 2
# How long the process may take beyond the shutdown timeout to exit (runtime teardown).
EXIT_GRACE = 2.0
LOAD_RUNS = (
    # (label, bcrypt cost, writer threads, login threads, seconds of load before SIGTERM)
    ("writes", 4, 12, 0, 3.0),
    ("slow-logins", 12, 4, 8, 4.0),
)
# Whether the server reads tickets sent just before the signal first is a race, hence
# several rounds of the runs on kept connections.
KEPT_CONNECTIONS, ROUNDS = 16, 4


def run(ctx: Context) -> Verdict:
    verdict = Verdict(NAME, TITLE)
    for label, cost, writers, logins, before in LOAD_RUNS:
        drive = partial(_under_load, writers=writers, logins=logins, before=before)
        _one_run(ctx, verdict, label, cost, drive)
    _one_run(ctx, verdict, "idle-keepalive", 4, _idle_keepalive, rounds=ROUNDS)
    _one_run(ctx, verdict, "one-worker-idle", 4, _one_worker_idle, rounds=ROUNDS)
    return verdict


def _one_run(ctx: Context, verdict: Verdict, label: str, cost: int, drive, rounds: int = 1) -> None:
    """Starts a service on a fresh database, `rounds` times in a row; `drive(service,
    tag, probe)` sends requests and SIGTERM (starting the probe) and returns the requests
    and when the signal went."""
    database = ctx.database(f"{NAME}_{label}")
    with scenario_database(SHARED, database) as url:
        writes, unanswered = [], []
        for round_no in range(1, rounds + 1):
            name = label if rounds == 1 else f"{label} {round_no}"
            probe = DrainProbe()
            with Service(
                ctx.run_dir,
                f"{NAME}-{name.replace(' ', '-')}",
                url,
                auth__bcrypt_cost=cost,
                server__shutdown_timeout_secs=SHUTDOWN_TIMEOUT,
                server__drain_secs=DRAIN,
                # Fixed, so that one-worker-idle can leave one of them without connections.
                server__workers=2,
            ) as service:
                if not verdict.check(service.wait_ready(60), f"[{name}] the service did not become ready"):
                    return
                requests, signalled = drive(service, tag=f"st{label[:3]}{round_no}", probe=probe)
                late = once(service.port, "GET", "/health/live", timeout=2)
                code = service.wait_exit(SHUTDOWN_TIMEOUT + 10)
                exited = time.monotonic() - signalled
            _judge(verdict, name, requests, signalled, code, exited, late)
            probe.judge(verdict, name)
            writes += [o.write for o in requests if o.write is not None]
            unanswered += [o for o in requests if o.unacknowledged is not None]
        check_writes(verdict, SHARED, database, writes)
        check_invariants(verdict, SHARED, database)
        if unanswered:
            _find_unacknowledged(verdict, label, database, unanswered)


def _find_unacknowledged(verdict: Verdict, label: str, database: str, unanswered: list[Outcome]) -> None:
    """Which tickets answered other than 2xx exist all the same: a client told 503 (or
    nothing) cannot know, and a retry duplicates them."""
    texts = {row[0] for row in psql(SHARED, database, "SELECT text FROM messages WHERE type = 'request'")}

    def kinds(outcomes: list[Outcome]) -> str:
        counts = Counter(o.reply.status or o.reply.error for o in outcomes)
        detail = ", ".join(f"{k} x{n}" for k, n in sorted(counts.items(), key=str))
        return f"{len(outcomes)} ({detail})" if outcomes else "0"

    committed = [o for o in unanswered if o.unacknowledged.text in texts]
    verdict.figure(
        f"[{label}] tickets answered other than 2xx: {kinds(unanswered)}; "
        f"in the database all the same: {kinds(committed)}"
    )


class DrainProbe:
    """Asks `/health/ready` on new connections from the signal on, until it fails: during
    the drain it must answer 503 and close the connection."""

    def __init__(self) -> None:
        self.reply = None
        self._thread: threading.Thread | None = None

    def start(self, service: Service) -> None:
        def poll() -> None:
            deadline = time.monotonic() + DRAIN / 2
            while time.monotonic() < deadline:
                self.reply = once(service.port, "GET", "/health/ready", timeout=2)
                if self.reply.status != 200:
                    return
                time.sleep(0.02)

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()

    def judge(self, verdict: Verdict, label: str) -> None:
        if self._thread is not None:
            self._thread.join()
        reply = self.reply
        seen = "nothing" if reply is None else f"{reply.status or reply.error}"
        if reply is not None and reply.closed_connection:
            seen += " with Connection: close"
        verdict.figure(f"[{label}] readiness during the drain: {seen}")
        verdict.check(
            reply is not None and reply.status == 503 and reply.closed_connection,
            f"[{label}] readiness during the drain answered {seen}, not 503 with Connection: close",
        )


def _terminate(service: Service, probe: DrainProbe) -> float:
    signalled = time.monotonic()
    service.send(signal.SIGTERM)
    probe.start(service)
    return signalled


def _under_load(service: Service, tag: str, probe: DrainProbe, writers: int, logins: int, before: float):
    team = actors(service.port, tag, customers=max(writers, 1), staff=0)
    load = Load(service.port, tag, duration=before + 30)
    for i in range(writers):
        load.add(team[i], WRITES)
    for i in range(logins):
        load.add(team[i % len(team)], LOGINS)
    load.start()
    time.sleep(before)
    signalled = _terminate(service, probe)
    # Clients stop sending new requests; those already sent run to completion.
    load.stop(join_timeout=SHUTDOWN_TIMEOUT + 10)
    return load.requests(), signalled


def _kept_connections(service: Service, actor, count: int) -> list[Client]:
    clients = [Client(service.port, token=actor.token) for _ in range(count)]
    for client in clients:
        client.call("GET", "/tickets?limit=1")
    return clients


def _tickets_then_signal(service: Service, clients: list[Client], tag: str, probe: DrainProbe, settle: float):
    """Sends a ticket on each kept connection, waits `settle` seconds, sends SIGTERM, and
    collects the answers."""
    bodies = [
        {"topic": f"kept-{i}", "text": f"{tag} ticket {i} on a kept connection"} for i in range(len(clients))
    ]
    failures = [client.send("POST", "/tickets", body) for client, body in zip(clients, bodies)]
    time.sleep(settle)
    signalled = _terminate(service, probe)
    requests = []
    for i, (client, failure, body) in enumerate(zip(clients, failures, bodies)):
        reply = failure or client.receive()
        client.close()
        attempt = Write("ticket", created_id(reply), body["text"], body["topic"])
        requests.append(Outcome(i, "open", reply, *((attempt, None) if reply.ok else (None, attempt))))
    return requests, signalled


def _idle_keepalive(service: Service, tag: str, probe: DrainProbe):
    [actor] = actors(service.port, tag, customers=1, staff=0)
    clients = _kept_connections(service, actor, KEPT_CONNECTIONS)
    return _tickets_then_signal(service, clients, tag, probe, settle=0)


def _one_worker_idle(service: Service, tag: str, probe: DrainProbe):
    team = actors(service.port, tag, customers=8, staff=0)
    warm_up = Load(service.port, f"{tag}w", duration=1.0)
    for actor in team:
        warm_up.add(actor, WRITES)
    warm_up.start()
    time.sleep(1.2)
    warm_up.stop()
    # actix hands new connections to its workers in turn, so every other one of these
    # is on the same worker: closing them leaves that worker without any.
    clients = _kept_connections(service, team[0], 2 * KEPT_CONNECTIONS)
    for client in clients[1::2]:
        client.close()
    time.sleep(0.1)
    # The pause lets the server read the tickets, which idle-keepalive shows it may not.
    requests, signalled = _tickets_then_signal(service, clients[0::2], tag, probe, settle=0.005)
    return warm_up.requests() + requests, signalled


def _judge(
    verdict: Verdict, label: str, requests: list[Outcome], signalled: float, code, exited, late
) -> None:
    sent_before = [o for o in requests if o.reply.sent is not None and o.reply.sent < signalled]
    in_flight = [o for o in sent_before if o.reply.ended > signalled]
    straddling = [
        o for o in requests if o.reply.started < signalled and (o.reply.sent or signalled) >= signalled
    ]
    lost = [o.reply for o in sent_before if o.reply.status is None]
    answered = [o for o in in_flight if o.reply.status is not None]
    logins = sum(1 for o in in_flight if o.op == "login")
    drained = max((o.reply.ended - signalled for o in answered), default=0.0)
    verdict.figure(
        f"[{label}] requests {tally(requests)}; in flight at SIGTERM {len(in_flight)} ({logins} logins): "
        f"{sum(o.reply.ok for o in answered)} answered 2xx, the last {drained:.2f} s after the signal, "
        f"{len(lost)} got no response; being sent at the signal {len(straddling)} "
        f"({sum(o.reply.ok for o in straddling)} 2xx)"
    )
    verdict.check(bool(in_flight), f"[{label}] no request was in flight at SIGTERM: the run proves nothing")
    if not verdict.check(not lost, f"[{label}] {len(lost)} requests sent before SIGTERM got no response"):
        before = sorted((signalled - r.sent) * 1e6 for r in lost)
        after = sorted((r.ended - signalled) * 1e3 for r in lost)
        verdict.failures[-1] += (
            f": sent {before[0]:.0f}-{before[-1]:.0f} µs before the signal, "
            f"{sum(r.reused for r in lost)} of them on idle keep-alive connections, "
            f"{'/'.join(sorted({r.error for r in lost}))} {after[0]:.1f}-{after[-1]:.1f} ms after it"
        )
    verdict.check(
        all(o.reply.ok for o in answered), f"[{label}] requests in flight at SIGTERM were answered non-2xx"
    )
    verdict.figure(
        f"[{label}] exit code {code} after {exited:.2f} s (shutdown timeout {SHUTDOWN_TIMEOUT} s); "
        f"a new connection after the signal got {late.status or late.error}"
    )
    verdict.check(code == 0, f"[{label}] the process exited with {code}, not 0")
    verdict.check(exited <= SHUTDOWN_TIMEOUT + EXIT_GRACE, f"[{label}] exiting took {exited:.1f} s")
