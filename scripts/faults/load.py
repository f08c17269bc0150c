"""Load on the service from worker threads: each acts as one account and picks its
next request from a weighted mix, until stopped, past its time limit, or at its
request limit. Every request is recorded with its timing, and every write the service
acknowledged (2xx) with the id it returned, so that it can be read back later."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from client import PASSWORD, Actor, Client, Reply

# Request mixes, as weights of operations.
MIXED = {"open": 3, "post": 3, "get": 2, "list": 2}
STAFF_MIXED = {"reply": 3, "list": 2, "get": 1}
# Staff writing on anyone's tickets: replies, and internal notes that customers never see.
STAFF_WRITES = {"reply": 2, "note": 1}
WRITES = {"open": 1, "post": 1}
CREATE_ONLY = {"open": 1}
LOGINS = {"login": 1}
READINESS = {"ready": 1}


@dataclass
class Write:
    """An acknowledged write: a ticket (with its first message's text) or a message."""

    kind: str
    id: int | None
    text: str
    topic: str | None = None


@dataclass
class Outcome:
    worker: int
    op: str
    reply: Reply
    write: Write | None = None
    # A write answered other than 2xx, when the scenario looks for it in the database.
    unacknowledged: Write | None = None


class Load:
    """Worker threads against one service. Add workers, then `start`, then `stop`."""

    def __init__(self, port: int, tag: str, duration: float, max_requests: int = 20_000, seed: int = 1):
        self.port = port
        self.tag = tag
        self.duration = duration
        self.max_requests = max_requests
        self.seed = seed
        self.outcomes: list[Outcome] = []
        self.tickets: list[int] = []  # acknowledged tickets, for staff replies
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def add(self, actor: Actor | None, mix: dict[str, int], pause: float = 0.0, count: int = 1) -> None:
        for _ in range(count):
            index = len(self._threads)
            self._threads.append(
                threading.Thread(
                    target=self._work, args=(index, actor, mix, pause), name=f"load-{index}", daemon=True
                )
            )

    def start(self) -> None:
        self.started = time.monotonic()
        self.deadline = self.started + self.duration
        for thread in self._threads:
            thread.start()

    def stop(self, join_timeout: float = 30) -> None:
        """Asks every worker to stop after its current request, and waits for them."""
        self._stop.set()
        limit = time.monotonic() + join_timeout
        for thread in self._threads:
            thread.join(max(0.0, limit - time.monotonic()))

    def requests(self, exclude: tuple[str, ...] = ("ready",)) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if o.op not in exclude]

    def acknowledged(self) -> list[Write]:
        with self._lock:
            return [o.write for o in self.outcomes if o.write is not None]

    def _work(self, index: int, actor: Actor | None, mix: dict[str, int], pause: float) -> None:
        rng = random.Random(self.seed * 1000 + index)
        client = Client(self.port, token=actor.token if actor else None)
        own: list[int] = []
        ops, weights = list(mix), list(mix.values())
        try:
            for seq in range(self.max_requests):
                if self._stop.is_set() or time.monotonic() >= self.deadline:
                    break
                op = rng.choices(ops, weights)[0]
                outcome = self._one(index, seq, op, actor, client, own, rng)
                with self._lock:
                    self.outcomes.append(outcome)
                    if outcome.write is not None and outcome.write.kind == "ticket" and outcome.write.id:
                        self.tickets.append(outcome.write.id)
                if pause:
                    self._stop.wait(pause)
        finally:
            client.close()

    def _anyones_ticket(self, rng: random.Random) -> int | None:
        with self._lock:
            return rng.choice(self.tickets) if self.tickets else None

    def _one(self, w: int, seq: int, op: str, actor, client: Client, own: list[int], rng) -> Outcome:
        label = f"{self.tag} w{w} n{seq}"
        if op in ("post", "get") and not own:
            op = "open"
        # Staff reply (or note) on anyone's ticket, and list instead until there is one.
        target = self._anyones_ticket(rng) if op in ("reply", "note") else None
        if op in ("reply", "note") and target is None:
            op = "list"
        if op == "open":
            topic, text = f"{self.tag}-{w}-{seq}"[:20], f"{label} opens a ticket"
            reply = client.call("POST", "/tickets", {"topic": topic, "text": text})
            write = None
            if reply.ok:
                write = Write("ticket", created_id(reply), text, topic)
                if write.id:
                    own.append(write.id)
            return Outcome(w, op, reply, write)
        if op in ("post", "reply", "note"):
            target = rng.choice(own) if op == "post" else target
            text = f"{label} writes on ticket {target}"
            body = {"text": text, "internal": True} if op == "note" else {"text": text}
            reply = client.call("POST", f"/tickets/{target}/messages", body)
            return Outcome(w, op, reply, Write("message", created_id(reply), text) if reply.ok else None)
        if op == "get":
            return Outcome(w, op, client.call("GET", f"/tickets/{rng.choice(own)}"))
        if op == "list":
            return Outcome(w, op, client.call("GET", "/tickets?limit=20&order=desc"))
        if op == "login":
            return Outcome(w, op, client.call("POST", "/login", {"email": actor.email, "password": PASSWORD}))
        if op == "ready":
            return Outcome(w, op, client.call("GET", "/health/ready"))
        raise ValueError(f"unknown operation {op}")


def created_id(reply: Reply) -> int | None:
    body = reply.body
    if isinstance(body, dict) and isinstance(body.get("id"), int):
        return body["id"]
    return None
