"""Scenario: the service started while PostgreSQL is down. It must retry with backoff,
saying so in the log, and then either serve once PostgreSQL appears or exit non-zero
with a clear message after its startup timeout — never hang silently.

Three cases: nothing listens on the database port; a port that accepts connections but
never answers (the classic silent hang); a private cluster started 3 s late."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from checks import Verdict
from client import Client, once, register
from cluster import HOST, PgServer, PrivateCluster, free_port, psql
from context import Context
from service import Service

NAME = "startup"
TITLE = "the service started while PostgreSQL is down"
RETRY_MESSAGE = "PostgreSQL is not ready; retrying"
GIVE_UP_MESSAGE = "PostgreSQL did not become ready within"
# Startup timeouts (s): each attempt on the silent port lasts the create timeout, so it
# needs longer for its backoff to show.
SHORT_TIMEOUT, SILENT_TIMEOUT = 4, 8
CREATE_TIMEOUT_MS = 2000
LATE_BY = 3.0
MAX_BACKOFF = 5.0


def run(ctx: Context) -> Verdict:
    verdict = Verdict(NAME, TITLE)
    closed = PgServer(free_port())
    _gives_up(ctx, verdict, "closed-port", closed.url("tickets_faults_none"), SHORT_TIMEOUT)
    with _silent_listener() as port:
        _gives_up(ctx, verdict, "silent-port", PgServer(port).url("tickets_faults_none"), SILENT_TIMEOUT)
    _late_database(ctx, verdict)
    return verdict


def _retries(service: Service) -> list[int]:
    return [
        int(r.get("retry_in_ms", -1))
        for r in service.log_records()
        if r.get("message") == RETRY_MESSAGE and r.get("level") == "WARN"
    ]


def _backoff_grows(delays: list[int]) -> bool:
    return len(delays) >= 2 and all(b >= a for a, b in zip(delays, delays[1:])) and delays[-1] > delays[0]


def _gives_up(ctx: Context, verdict: Verdict, label: str, url: str, timeout: int) -> None:
    service = Service(
        ctx.run_dir,
        f"{NAME}-{label}",
        url,
        database__startup_timeout_secs=timeout,
        database__pool_create_timeout_ms=CREATE_TIMEOUT_MS,
    ).start()
    # An attempt begun before the deadline may last the create timeout.
    limit = timeout + CREATE_TIMEOUT_MS / 1000 + 3
    try:
        code = service.wait_exit(limit + 10)
        took = time.monotonic() - service.started_at
    finally:
        service.stop()
    delays = _retries(service)
    last_words = [r["raw"] for r in service.log_records() if GIVE_UP_MESSAGE in r.get("raw", "")]
    verdict.figure(
        f"{label}: exit code {code} after {took:.2f} s (startup timeout {timeout} s); "
        f"{len(delays)} retry log lines, delays {delays} ms"
    )
    verdict.figure(f"{label}: last message: {last_words[0] if last_words else 'none'}")
    verdict.check(code is not None, f"{label}: still running {limit + 10:.0f} s after start: it hangs")
    verdict.check(code not in (None, 0), f"{label}: exit code {code}, not a failure")
    verdict.check(took <= limit, f"{label}: took {took:.1f} s to give up, over {limit:.0f} s")
    verdict.check(_backoff_grows(delays), f"{label}: no growing backoff in the retry log lines: {delays}")
    verdict.check(bool(last_words), f"{label}: no '{GIVE_UP_MESSAGE} …' message on exit")


@contextlib.contextmanager
def _silent_listener():
    """A port of 127.0.0.1 that accepts connections and never says a word."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((HOST, 0))
    listener.listen(64)
    listener.settimeout(0.2)
    held, done = [], threading.Event()

    def accept() -> None:
        while not done.is_set() and len(held) < 1000:
            with contextlib.suppress(socket.timeout, OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        thread.join(5)
        for connection in held:
            connection.close()
        listener.close()


def _late_database(ctx: Context, verdict: Verdict) -> None:
    label = "late-database"
    with PrivateCluster(ctx.run_dir, f"{NAME}-{label}") as pg:
        pg.start()
        database = ctx.database(NAME)
        psql(pg.server, "postgres", f'CREATE DATABASE "{database}"')
        pg.stop("fast")
        with Service(
            ctx.run_dir, f"{NAME}-{label}", pg.server.url(database), database__startup_timeout_secs=30
        ) as service:
            time.sleep(LATE_BY)
            waiting = service.alive()
            early = once(service.port, "GET", "/health/live", timeout=1)
            pg.start()
            up_at = time.monotonic()
            ready = service.wait_ready(MAX_BACKOFF + 15)
            ready_after = time.monotonic() - up_at
            registered = None
            if ready:
                client = Client(service.port)
                with contextlib.suppress(RuntimeError):
                    registered = register(client, "late@faults.example")
                client.close()
        delays = _retries(service)
        verdict.figure(
            f"{label}: after {LATE_BY:.0f} s without PostgreSQL: running {waiting}, port "
            f"{'closed' if early.status is None else early.status}, "
            f"{len(delays)} retry log lines {delays} ms; "
            f"ready {ready} {ready_after:.2f} s after PostgreSQL started; registration "
            f"{'201' if registered else 'failed'}"
        )
        verdict.check(waiting, f"{label}: the service exited instead of waiting for PostgreSQL")
        verdict.check(len(delays) >= 2, f"{label}: no retry log lines while waiting")
        verdict.check(
            ready and ready_after <= MAX_BACKOFF + 3, f"{label}: not serving soon after PostgreSQL came up"
        )
        verdict.check(registered is not None, f"{label}: the service did not serve a request")
