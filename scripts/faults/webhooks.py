"""What the webhook scenarios share: a receiving HTTP server on 127.0.0.1 that records
every attempt, a signature check of its own (Standard Webhooks, written here with hmac
and hashlib, independent of the service's Rust code), two replicas set up to deliver
to it, and the judgement of what arrived against the `ticket_events` table.

A receipt also says which replica sent it: the receiver looks up, for each connection
it accepts, which of the scenario's processes holds the other end of it (in /proc), so
that a scenario can tell the attempts of a killed replica from the others'."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from checks import Verdict
from client import Actor, Client, SetupError, actors, login
from cluster import HOST, PgServer, psql
from load import STAFF_WRITES, WRITES, Load
from service import Service, create_superuser

SECRET_PREFIX = "whsec_"
# Standard Webhooks' verifiers refuse a timestamp further than this from their clock.
TIMESTAMP_TOLERANCE = 300
# A delivery's attempts may take 10 s each; leases must be longer (the settings refuse
# 10 or less). The shortest allowed, so that a killed replica's claims end soon.
LEASE_SECS = 11


def replica_settings(concurrency: int, retry_delays: str = "1,1,2,2,5") -> dict[str, str]:
    """`TICKETS__WEBHOOKS__*` for replicas that deliver to a receiver on 127.0.0.1, look
    for due deliveries ten times a second, and retry within seconds, not minutes."""
    return {
        "webhooks__allow_private_targets": "true",
        "webhooks__poll_interval_ms": "100",
        "webhooks__lease_secs": str(LEASE_SECS),
        "webhooks__retry_delays_secs": retry_delays,
        "webhooks__concurrency": str(concurrency),
    }


def signature_valid(secret: str, webhook_id: str, timestamp: str, body: bytes, header: str) -> bool:
    """The Standard Webhooks check: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`
    keyed with the base64-decoded part of the secret after `whsec_`. The header may list
    several space-separated signatures (while a secret is rotated): one must match."""
    if not secret.startswith(SECRET_PREFIX):
        return False
    key = base64.b64decode(secret[len(SECRET_PREFIX) :])
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in header.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


# The example of the Standard Webhooks specification: (secret, id, timestamp, body, signature).
SPEC_EXAMPLE = (
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "msg_p5jXN8AQM9LWM0D4loKWxJek",
    "1614265330",
    b'{"test": 2432232314}',
    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
)


def verifier_works() -> bool:
    """The check above accepts the specification's example and refuses it altered, so
    that a scenario cannot pass on a check that accepts anything."""
    secret, webhook_id, timestamp, body, header = SPEC_EXAMPLE
    return signature_valid(secret, webhook_id, timestamp, body, header) and not any(
        signature_valid(*altered)
        for altered in (
            (secret, webhook_id, timestamp, body + b" ", header),
            (secret, webhook_id, str(int(timestamp) + 1), body, header),
            (secret, webhook_id + "x", timestamp, body, header),
            ("whsec_" + base64.b64encode(b"another key").decode(), webhook_id, timestamp, body, header),
        )
    )


@dataclass
class Receipt:
    """One attempt as the receiver saw it. Times are monotonic, except `wall`."""

    webhook_id: str
    timestamp: str
    signature: str
    body: bytes
    # The name of the replica whose connection it came on (None if none was found).
    sender: str | None
    started: float
    wall: float
    status: int
    # When the receiver was done with it: its answer written, or writing it failed.
    ended: float | None = None
    answered: bool = False

    def event(self) -> dict | None:
        try:
            body = json.loads(self.body)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None


class Receiver:
    """A threaded HTTP server on a free port of 127.0.0.1 that records every POST.

    Each attempt is answered after `delay` seconds (so that attempts stay in flight long
    enough to be caught by a kill, or to overlap if the service let them); with
    `fail_first_every=N` the first attempt of every event whose id is a multiple of N is
    answered 500, so that it is retried, possibly by the other replica."""

    def __init__(self, services: list[Service], delay: float, fail_first_every: int = 0):
        self.services = services
        self.delay = delay
        self.fail_first_every = fail_first_every
        self.receipts: list[Receipt] = []
        self._tries: Counter = Counter()
        self._lock = threading.Lock()
        self._server = _Server((HOST, 0), _Handler)
        self._server.receiver = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, name="receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}/hook"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    def snapshot(self) -> list[Receipt]:
        with self._lock:
            return list(self.receipts)

    def in_flight(self, sender: str | None = None) -> list[Receipt]:
        """Attempts received and not yet answered, from `sender` if named."""
        return [r for r in self.snapshot() if r.ended is None and (sender is None or r.sender == sender)]

    def _status_for(self, webhook_id: str, event: dict | None) -> int:
        with self._lock:
            self._tries[webhook_id] += 1
            first = self._tries[webhook_id] == 1
        event_id = event.get("id") if event else None
        if (
            first
            and self.fail_first_every
            and isinstance(event_id, int)
            and event_id % self.fail_first_every == 0
        ):
            return 500
        return 200

    def _record(self, receipt: Receipt) -> None:
        with self._lock:
            self.receipts.append(receipt)

    def sender_of(self, client_port: int) -> str | None:
        return connection_owner(client_port, self._server.server_address[1], self.services)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Both replicas open up to `concurrency` connections at once; the default backlog
    # of 5 would drop some of their SYNs, and a retried SYN waits a whole second.
    request_queue_size = 128


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive, as the service's HTTP client expects; every answer has a length.
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.sender = self.server.receiver.sender_of(self.client_address[1])  # type: ignore[attr-defined]

    def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
        receiver: Receiver = self.server.receiver  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        receipt = Receipt(
            webhook_id=self.headers.get("webhook-id", ""),
            timestamp=self.headers.get("webhook-timestamp", ""),
            signature=self.headers.get("webhook-signature", ""),
            body=body,
            sender=self.sender,
            started=time.monotonic(),
            wall=time.time(),
            status=200,
        )
        receipt.status = receiver._status_for(receipt.webhook_id, receipt.event())
        receiver._record(receipt)
        time.sleep(receiver.delay)
        try:
            self.send_response(receipt.status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.wfile.flush()
            receipt.answered = True
        except OSError:
            # The sender is gone (killed): nobody reads the answer.
            self.close_connection = True
        finally:
            receipt.ended = time.monotonic()

    def log_message(self, *_args) -> None:
        pass


def _tcp_inode(local_port: int, remote_port: int) -> str | None:
    """The socket inode of the IPv4 TCP connection 127.0.0.1:local → 127.0.0.1:remote."""
    with open("/proc/net/tcp", encoding="ascii") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if int(local.split(":")[1], 16) == local_port and int(remote.split(":")[1], 16) == remote_port:
                return inode
    return None


def connection_owner(client_port: int, server_port: int, services: list[Service]) -> str | None:
    """Which service holds the client end of a connection to `server_port`."""
    inode = _tcp_inode(client_port, server_port)
    if inode is None:
        return None
    wanted = f"socket:[{inode}]"
    for service in services:
        if not service.alive():
            continue
        fds = Path(f"/proc/{service.pid}/fd")
        try:
            for fd in os.listdir(fds):
                try:
                    if os.readlink(fds / fd) == wanted:
                        return service.name
                except OSError:
                    continue
        except OSError:
            continue
    return None


def superuser(run_dir: Path, database_url: str, port: int, email: str) -> Actor:
    """A superuser made as an operator makes one (`tickets create-superuser`), logged in."""
    create_superuser(run_dir, database_url, email, email.split("@")[0])
    client = Client(port)
    try:
        return Actor(email, login(client, email), is_staff=True)
    finally:
        client.close()


def subscribe(port: int, root: Actor, url: str) -> tuple[int, str]:
    """Subscribes `url` to every event; returns the webhook's id and its secret."""
    client = Client(port, token=root.token)
    try:
        reply = client.call(
            "POST", "/webhooks", {"url": url, "events": ["*"], "description": "faults receiver"}
        )
    finally:
        client.close()
    body = reply.body if isinstance(reply.body, dict) else {}
    if reply.status != 201 or not str(body.get("secret", "")).startswith(SECRET_PREFIX):
        raise SetupError(
            f"creating the webhook: expected 201 with a secret, got {reply.status or reply.error}"
        )
    return int(body["id"]), str(body["secret"])


def outbox(server: PgServer, database: str) -> Counter:
    """Deliveries by state, and `events`: the events in the log."""
    counts = Counter(
        {
            state: int(n)
            for state, n in psql(
                server, database, "SELECT state, count(*) FROM webhook_deliveries GROUP BY state"
            )
        }
    )
    [(events,)] = psql(server, database, "SELECT count(*) FROM ticket_events")
    counts["events"] = int(events)
    return counts


def wait_drained(server: PgServer, database: str, timeout: float) -> tuple[bool, float, Counter]:
    """Waits until every event of the log has its delivery and none is pending; returns
    whether it came, how long it took, and the last counts."""
    began = time.monotonic()
    while True:
        counts = outbox(server, database)
        delivered_or_failed = counts["delivered"] + counts["failed"]
        if counts["pending"] == 0 and delivered_or_failed == counts["events"]:
            return True, time.monotonic() - began, counts
        if time.monotonic() - began > timeout:
            return False, time.monotonic() - began, counts
        time.sleep(0.25)


@dataclass
class Deliveries:
    """The receipts grouped by the event they carry."""

    by_event: dict[int, list[Receipt]] = field(default_factory=lambda: defaultdict(list))
    unreadable: list[Receipt] = field(default_factory=list)


def judge_deliveries(
    verdict: Verdict, receipts: list[Receipt], secret: str, server: PgServer, database: str
) -> Deliveries:
    """Checks every receipt (signature, fresh timestamp, a body that is the logged event)
    and that every event of the log arrived with a valid signature and a 2xx answer;
    duplicates of an event must carry one and the same `webhook-id`, and no two events
    may share one."""
    log = {
        int(event_id): (event_type, int(ticket_id))
        for event_id, event_type, ticket_id in psql(
            server, database, "SELECT id, type, ticket_id FROM ticket_events ORDER BY id"
        )
    }
    grouped = Deliveries()
    bad_signature = stale = mismatched = 0
    for receipt in receipts:
        if not signature_valid(
            secret, receipt.webhook_id, receipt.timestamp, receipt.body, receipt.signature
        ):
            bad_signature += 1
        if (
            not receipt.timestamp.isdigit()
            or abs(receipt.wall - int(receipt.timestamp)) > TIMESTAMP_TOLERANCE
        ):
            stale += 1
        event = receipt.event()
        event_id = event.get("id") if event else None
        if not isinstance(event_id, int):
            grouped.unreadable.append(receipt)
            continue
        grouped.by_event[event_id].append(receipt)
        if log.get(event_id) != (event.get("type"), event.get("ticket_id")):
            mismatched += 1

    delivered = {
        event_id
        for event_id, attempts in grouped.by_event.items()
        if any(r.answered and 200 <= r.status < 300 for r in attempts)
    }
    missing = sorted(set(log) - delivered)
    unknown = sorted(set(grouped.by_event) - set(log))
    ids_per_event = {
        event_id: {r.webhook_id for r in attempts} for event_id, attempts in grouped.by_event.items()
    }
    split = sorted(event_id for event_id, ids in ids_per_event.items() if len(ids) > 1)
    owners = Counter(webhook_id for ids in ids_per_event.values() for webhook_id in ids)
    shared = sorted(webhook_id for webhook_id, n in owners.items() if n > 1)
    successes = Counter(
        event_id for event_id, attempts in grouped.by_event.items() for r in attempts if 200 <= r.status < 300
    )
    duplicated = {event_id: n - 1 for event_id, n in successes.items() if n > 1}

    verdict.figure(
        f"events in the log {len(log)}; attempts received {len(receipts)}, events delivered "
        f"(2xx answered, valid signature) {len(delivered)}, missing {len(missing)}"
    )
    verdict.figure(
        f"duplicates (an event received with 2xx more than once): {sum(duplicated.values())} extra "
        f"receipts of {len(duplicated)} events, each with one webhook-id: {not split}"
    )
    verdict.figure(
        f"invalid signatures {bad_signature}, timestamps off by more than {TIMESTAMP_TOLERANCE} s {stale}, "
        f"bodies that are not the logged event {mismatched + len(grouped.unreadable)}"
    )
    verdict.check(verifier_works(), "the signature check here fails the specification's example")
    verdict.check(bool(log), "no event was written")
    verdict.check(not missing, f"{len(missing)} events never arrived, e.g. ids {missing[:10]}")
    verdict.check(not unknown, f"{len(unknown)} receipts carry events the log lacks: {unknown[:10]}")
    verdict.check(bad_signature == 0, f"{bad_signature} attempts had a signature that does not verify")
    verdict.check(
        stale == 0, f"{stale} attempts had a webhook-timestamp off by more than {TIMESTAMP_TOLERANCE} s"
    )
    verdict.check(
        mismatched == 0 and not grouped.unreadable,
        f"{mismatched + len(grouped.unreadable)} bodies are not the event of the log",
    )
    verdict.check(not split, f"{len(split)} events arrived under different webhook-ids, e.g. {split[:5]}")
    verdict.check(not shared, f"{len(shared)} webhook-ids carried different events, e.g. {shared[:5]}")
    return grouped


def judge_outbox(verdict: Verdict, drained: bool, took: float, counts: Counter) -> None:
    verdict.figure(
        f"outbox {'drained' if drained else 'NOT drained'} {took:.1f} s after the load: "
        f"delivered {counts['delivered']}, failed {counts['failed']}, pending {counts['pending']} "
        f"of {counts['events']} events"
    )
    verdict.check(drained, "the outbox did not drain")
    verdict.check(counts["failed"] == 0, f"{counts['failed']} deliveries were given up")


@contextlib.contextmanager
def replicas(run_dir: Path, name: str, url: str, settings: dict[str, str]):
    """Two replicas on one database, started together; yields them once both are ready
    (or raises SetupError) and stops them on leaving, before the database is dropped."""
    started = [Service(run_dir, f"{name}-{label}", url, **settings).start() for label in ("a", "b")]
    try:
        for replica in started:
            if not replica.wait_ready(60):
                raise SetupError(f"{replica.name} did not become ready (see {replica.log_path})")
        yield started
    finally:
        for replica in started:
            replica.stop()


def write_through(
    pair: list[Service], tag: str, writers_per_replica: int, pause: float, staff_on: int
) -> list[Load]:
    """Starts writing through both replicas: one Load each, with `writers_per_replica`
    customers opening tickets and posting on them, and one member of staff replying and
    writing notes through replica `staff_on` (every event goes to the webhook)."""
    team = actors(pair[0].port, tag, customers=2 * writers_per_replica, staff=1)
    loads = [Load(replica.port, f"{tag}{i}", duration=60, seed=i + 1) for i, replica in enumerate(pair)]
    for i, actor in enumerate(a for a in team if not a.is_staff):
        loads[i % 2].add(actor, WRITES, pause=pause)
    loads[staff_on].add(team[-1], STAFF_WRITES, pause=2 * pause)
    for load in loads:
        load.start()
    return loads
