"""A timed HTTP client for 127.0.0.1 that records network failures instead of raising
them, and the API calls that set up a scenario's accounts."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass, field

from cluster import HOST

PASSWORD = "faults-password-1"
# The staff key these runs give the service (a test-only value).
STAFF_KEY = "tickets-faults-staff-key-0123456789"


@dataclass
class Reply:
    """One request: its status (None when no response came), the decoded JSON body,
    the network error if any, and monotonic times: started, request sent, ended."""

    method: str
    path: str
    status: int | None
    body: object
    error: str | None
    started: float
    sent: float | None
    ended: float
    # Sent on a keep-alive connection that an earlier request opened.
    reused: bool = False
    # The response closed its connection (`Connection: close`).
    closed_connection: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def latency(self) -> float:
        return self.ended - self.started


@dataclass
class Client:
    """A keep-alive connection to the service, reopened after any failure."""

    port: int
    token: str | None = None
    timeout: float = 15.0
    _connection: http.client.HTTPConnection | None = field(default=None, repr=False)
    _last_used: float = 0.0
    _pending: Reply | None = field(default=None, repr=False)

    def call(self, method: str, path: str, body: object = None, token: str | None = None) -> Reply:
        return self.send(method, path, body, token) or self.receive()

    def send(self, method: str, path: str, body: object = None, token: str | None = None) -> Reply | None:
        """Sends a request without waiting for its answer: None once it is sent (then
        `receive` the answer), else the failed Reply."""
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        bearer = token or self.token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        # actix closes connections idle for 5 s; reopening first keeps that ordinary
        # close from being counted as a failure of the service.
        if self._connection is not None and time.monotonic() - self._last_used > 3:
            self.close()
        self._pending = Reply(method, path, None, None, None, time.monotonic(), None, 0.0)
        self._pending.reused = self._connection is not None
        try:
            if self._connection is None:
                self._connection = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
            self._connection.request(method, path, body=payload, headers=headers)
            self._pending.sent = time.monotonic()
            return None
        except (OSError, http.client.HTTPException) as e:
            return self._failed(e)

    def receive(self) -> Reply:
        """The answer to the request `send` sent."""
        reply = self._pending
        assert reply is not None and self._connection is not None, "receive() without send()"
        try:
            response = self._connection.getresponse()
            raw = response.read()
            reply.closed_connection = response.will_close
            if response.will_close:
                self.close()
        except (OSError, http.client.HTTPException) as e:
            return self._failed(e)
        reply.status = response.status
        try:
            reply.body = json.loads(raw) if raw else None
        except ValueError:
            reply.body = None
        return self._finish(reply)

    def _failed(self, error: Exception) -> Reply:
        self.close()
        self._pending.error = type(error).__name__
        return self._finish(self._pending)

    def _finish(self, reply: Reply) -> Reply:
        reply.ended = self._last_used = time.monotonic()
        self._pending = None
        return reply

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def once(
    port: int, method: str, path: str, body: object = None, token: str | None = None, timeout: float = 15.0
) -> Reply:
    """One request on a connection of its own, closed afterwards (an open keep-alive
    connection would hold up a graceful shutdown)."""
    client = Client(port, token=token, timeout=timeout)
    try:
        return client.call(method, path, body)
    finally:
        client.close()


@dataclass(frozen=True)
class Actor:
    """An account the load acts as."""

    email: str
    token: str
    is_staff: bool


class SetupError(RuntimeError):
    pass


def _expect(reply: Reply, status: int, what: str) -> dict:
    if reply.status != status or not isinstance(reply.body, dict):
        raise SetupError(f"{what}: expected {status}, got {reply.status or reply.error} {reply.body}")
    return reply.body


def register(client: Client, email: str, staff: bool = False) -> dict:
    body = {"email": email, "password": PASSWORD, "username": email.split("@")[0][:64]}
    if staff:
        body["isStaff"] = True
    reply = client.call("POST", "/users", body, token=STAFF_KEY if staff else None)
    return _expect(reply, 201, f"registering {email}")


def login(client: Client, email: str) -> str:
    reply = client.call("POST", "/login", {"email": email, "password": PASSWORD})
    return str(_expect(reply, 200, f"logging in {email}")["token"])


def actors(port: int, tag: str, customers: int, staff: int) -> list[Actor]:
    """Registers and logs in `customers` customers and `staff` staff (through the staff
    key), with emails unique to `tag`."""
    client = Client(port)
    try:
        made = []
        for i in range(customers + staff):
            is_staff = i >= customers
            email = f"{tag}-{'staff' if is_staff else 'cust'}{i}@faults.example"
            register(client, email, staff=is_staff)
            made.append(Actor(email, login(client, email), is_staff))
        return made
    finally:
        client.close()
