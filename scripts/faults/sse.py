"""A client of the live event stream, `GET /events` (Server-Sent Events), as the
contract asks clients to behave: it follows the stream in a thread of its own and, when
the stream ends (or the client drops it on purpose), reconnects with the last event id
it received, so that it should miss nothing and receive nothing twice.

Each event is recorded with the monotonic time its last line arrived; the scenarios
compare what a client received with what the `ticket_events` table says it may see."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass

from client import Actor
from cluster import HOST, PgServer, psql

# Longer than the keep-alive comment's period (15 s by default): a stream silent for
# longer is dead.
READ_TIMEOUT = 20.0
# Between a failed or ended connection and the next try.
RECONNECT_PAUSE = 0.2


@dataclass(frozen=True)
class StreamEvent:
    id: int
    type: str
    data: dict
    arrived: float
    # Which connection of the client brought it (1 for the first).
    connection: int


class EventStream:
    """Follows `GET /events{query}` on `port` as `actor`. Resumes with the
    `Last-Event-ID` header, or with `?last_event_id=` when `resume_in_query`."""

    def __init__(self, name: str, port: int, actor: Actor, query: str = "", resume_in_query: bool = False):
        self.name = name
        self.port = port
        self.actor = actor
        self.query = query
        self.resume_in_query = resume_in_query
        self.events: list[StreamEvent] = []
        # Streams answered 200, and the other answers (status or error) to reconnections.
        self.connections = 0
        self.refusals: Counter = Counter()
        # Why each connection ended: "closed by the server", "dropped by the client", an error name.
        self.ends: Counter = Counter()
        self.keep_alives = 0
        self.opened = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._dropping = False
        self._pause = RECONNECT_PAUSE
        self._thread = threading.Thread(target=self._run, name=f"sse-{name}", daemon=True)

    @property
    def last_id(self) -> int | None:
        with self._lock:
            return self.events[-1].id if self.events else None

    def start(self) -> EventStream:
        self._thread.start()
        return self

    def drop(self, pause: float = RECONNECT_PAUSE) -> None:
        """Closes the current connection as a client would (network change, restart of
        the client); the stream's thread reconnects `pause` seconds later with the last
        id it received, so that what was written meanwhile has to come from the log."""
        with self._lock:
            self._dropping = True
            self._pause = pause
            self._shut(self._socket)

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            self._shut(self._socket)
        self._thread.join(READ_TIMEOUT + 5)

    def received(self) -> list[StreamEvent]:
        with self._lock:
            return list(self.events)

    def wait_for(self, event_id: int, timeout: float) -> bool:
        """Waits until an event with an id of at least `event_id` has arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = self.last_id
            if last is not None and last >= event_id:
                return True
            time.sleep(0.05)
        return False

    @staticmethod
    def _shut(sock: socket.socket | None) -> None:
        # shutdown(), unlike close(), wakes the thread blocked reading the socket.
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _run(self) -> None:
        while not self._stop.is_set():
            connection = http.client.HTTPConnection(HOST, self.port, timeout=READ_TIMEOUT)
            try:
                end = self._follow(connection)
            except (OSError, http.client.HTTPException, ValueError) as e:
                end = type(e).__name__
            with self._lock:
                if self._dropping:
                    end, self._dropping = "dropped by the client", False
                self._socket = None
                pause, self._pause = self._pause, RECONNECT_PAUSE
            connection.close()
            if end is not None and not self._stop.is_set():
                self.ends[end] += 1
            self._stop.wait(pause)

    def _follow(self, connection: http.client.HTTPConnection) -> str | None:
        """One connection: returns why it ended (None for a refused one, counted apart)."""
        connection.connect()
        with self._lock:
            # Kept apart: http.client forgets the socket of a response that will close.
            self._socket = connection.sock
            self._dropping = False
        headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {self.actor.token}"}
        path = "/events" + self.query
        last = self.last_id
        if last is not None:
            if self.resume_in_query:
                path += ("&" if "?" in path else "?") + f"last_event_id={last}"
            else:
                headers["Last-Event-ID"] = str(last)
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        if response.status != 200:
            response.read()
            self.refusals[response.status] += 1
            return None
        self.connections += 1
        number = self.connections
        self.opened.set()
        fields: dict[str, str] = {}
        while True:
            line = response.readline()
            if not line:
                return "closed by the server"
            text = line.decode("utf-8").rstrip("\r\n")
            if text:
                if text.startswith(":"):
                    self.keep_alives += 1
                    continue
                name, _, value = text.partition(":")
                value = value[1:] if value.startswith(" ") else value
                # Several data lines make one value, joined by newlines.
                fields[name] = fields[name] + "\n" + value if name == "data" and name in fields else value
                continue
            if "data" in fields:
                event = StreamEvent(
                    int(fields["id"]),
                    fields.get("event", ""),
                    json.loads(fields["data"]),
                    time.monotonic(),
                    number,
                )
                with self._lock:
                    self.events.append(event)
            fields = {}


def user_id(server: PgServer, database: str, actor: Actor) -> int:
    [(found,)] = psql(server, database, f"SELECT id FROM users WHERE email = '{actor.email}'")
    return int(found)


def visible_events(server: PgServer, database: str, actor: Actor) -> list[int]:
    """The ids of the events `actor` may see, as the contract says: staff all of them,
    a customer their own tickets' except internal notes."""
    if actor.is_staff:
        sql = "SELECT id FROM ticket_events ORDER BY id"
    else:
        sql = (
            "SELECT e.id FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id "
            f"WHERE t.author_id = {user_id(server, database, actor)} AND e.type <> 'note.created' "
            "ORDER BY e.id"
        )
    return [int(row[0]) for row in psql(server, database, sql)]


def write_key(event: StreamEvent) -> tuple[str, int] | None:
    """What write an event records, as (kind, id) of the ticket or message it returned:
    `ticket.created` a ticket, `message.created` and `note.created` a message."""
    if event.type == "ticket.created":
        return ("ticket", int(event.data["ticket_id"]))
    if event.type in ("message.created", "note.created"):
        return ("message", int(event.data["data"]["message_id"]))
    return None


def arrival_delays(
    events: list[StreamEvent], writes: list[tuple[tuple[str, int], float]]
) -> list[float | None]:
    """For each write, given as ((kind, id), when its response arrived), how long after
    that its event arrived on the stream (negative: before); None when it never did."""
    arrived = {write_key(e): e.arrived for e in events}
    return [arrived[key] - answered if key in arrived else None for key, answered in writes]
