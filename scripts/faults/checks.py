"""Verdicts and the checks scenarios share: tallies of responses, reading back every
acknowledged write, and the data invariants (every ticket has its first message, every
`tickets_count` is right, no orphan message)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from cluster import PgServer, id_array, psql
from load import Outcome, Write


@dataclass
class Verdict:
    """A scenario's outcome: PASS when no check failed; figures are printed either way."""

    name: str
    title: str
    figures: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def figure(self, text: str) -> None:
        self.figures.append(text)

    def check(self, condition: bool, failure: str) -> bool:
        if not condition:
            self.failures.append(failure)
        return condition

    @property
    def passed(self) -> bool:
        return not self.failures

    def report(self) -> str:
        lines = [f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.title}"]
        lines += [f"    {line}" for line in self.figures]
        lines += [f"  ! {line}" for line in self.failures]
        return "\n".join(lines)


@dataclass
class Tally:
    sent: int
    ok: int
    unavailable: int
    other: Counter

    def __str__(self) -> str:
        others = sum(self.other.values())
        detail = ", ".join(f"{k} x{n}" for k, n in sorted(self.other.items(), key=str))
        return f"sent {self.sent}: 2xx {self.ok}, 503 {self.unavailable}, other {others}" + (
            f" ({detail})" if detail else ""
        )


def tally(outcomes: list[Outcome]) -> Tally:
    ok = unavailable = 0
    other: Counter = Counter()
    for o in outcomes:
        status = o.reply.status
        if status is not None and 200 <= status < 300:
            ok += 1
        elif status == 503:
            unavailable += 1
        else:
            other[status if status is not None else o.reply.error] += 1
    return Tally(len(outcomes), ok, unavailable, other)


def millis(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def latency_summary(seconds: list[float]) -> str:
    if not seconds:
        return "none"
    ordered = sorted(seconds)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return f"p50 {millis(at(0.5))}, p99 {millis(at(0.99))}, max {millis(ordered[-1])}"


def check_writes(verdict: Verdict, server: PgServer, database: str, writes: list[Write]) -> None:
    """Reads back every acknowledged write: the ticket with its topic and first message,
    the message with its text. Counts the rows committed without a 2xx too, which
    assumes that all tickets and messages of the database come from these writes' load."""
    problems = [f"a 2xx {w.kind} write returned no id" for w in writes if not w.id]
    tickets = {w.id: w for w in writes if w.kind == "ticket" and w.id}
    messages = {w.id: w for w in writes if w.kind == "message" and w.id}
    found = {}
    if tickets:
        for ticket_id, topic, first_text in psql(
            server,
            database,
            "SELECT t.id, t.topic, (SELECT m.text FROM messages m WHERE m.ticket_id = t.id "
            "ORDER BY m.created_at, m.id LIMIT 1) FROM tickets t "
            f"WHERE t.id = ANY ({id_array(tickets)})",
        ):
            found[("ticket", int(ticket_id))] = (topic, first_text)
    if messages:
        for message_id, text in psql(
            server, database, f"SELECT id, text FROM messages WHERE id = ANY ({id_array(messages)})"
        ):
            found[("message", int(message_id))] = (None, text)
    verified = 0
    for w in list(tickets.values()) + list(messages.values()):
        row = found.get((w.kind, w.id))
        if row is None:
            problems.append(f"acknowledged {w.kind} {w.id} is not in the database")
        elif row != (w.topic, w.text):
            problems.append(f"acknowledged {w.kind} {w.id} holds {row}, not {(w.topic, w.text)}")
        else:
            verified += 1
    [(all_tickets, all_messages)] = psql(
        server, database, "SELECT (SELECT count(*) FROM tickets), (SELECT count(*) FROM messages)"
    )
    # Every row comes from the load, and each ticket brings its first message.
    unacknowledged_tickets = int(all_tickets) - len(tickets)
    unacknowledged_messages = int(all_messages) - int(all_tickets) - len(messages)
    verdict.figure(
        f"acknowledged writes verified in the database: {verified}/{len(writes)} "
        f"({len(tickets)} tickets, {len(messages)} messages); committed without a 2xx "
        f"(answer lost or 503 after commit): {unacknowledged_tickets} tickets, "
        f"{unacknowledged_messages} messages"
    )
    for problem in problems[:10]:
        verdict.check(False, problem)
    verdict.check(len(problems) <= 10, f"... and {len(problems) - 10} more unverified writes")


INVARIANTS = """
SELECT
  (SELECT count(*) FROM tickets),
  (SELECT count(*) FROM messages),
  (SELECT count(*) FROM tickets t
     LEFT JOIN LATERAL (SELECT m.type, m.author_id FROM messages m WHERE m.ticket_id = t.id
                        ORDER BY m.created_at, m.id LIMIT 1) first ON true
     WHERE first.type IS DISTINCT FROM 'request' OR first.author_id IS DISTINCT FROM t.author_id),
  (SELECT count(*) FROM users u
     WHERE u.tickets_count <> (SELECT count(*) FROM tickets t WHERE t.author_id = u.id)),
  (SELECT count(*) FROM messages m
     WHERE NOT EXISTS (SELECT 1 FROM tickets t WHERE t.id = m.ticket_id)
        OR NOT EXISTS (SELECT 1 FROM users u WHERE u.id = m.author_id))
"""


def check_invariants(verdict: Verdict, server: PgServer, database: str) -> None:
    """Checks the data invariants of the whole database."""
    [row] = psql(server, database, INVARIANTS)
    tickets, messages, no_first, bad_counts, orphans = (int(x) for x in row)
    verdict.figure(
        f"database: {tickets} tickets, {messages} messages; tickets without their first "
        f"message {no_first}, users with a wrong tickets_count {bad_counts}, orphan messages {orphans}"
    )
    verdict.check(no_first == 0, f"{no_first} tickets lack their first message (half-created)")
    verdict.check(bad_counts == 0, f"{bad_counts} users have a tickets_count that differs from their tickets")
    verdict.check(orphans == 0, f"{orphans} messages have no ticket or no author")
