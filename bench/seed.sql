-- The benchmark's dataset, generated in the database (one INSERT … SELECT per table)
-- after `tickets migrate` created the schema and its indexes. Run by the bench binary:
--
--   psql -v users=10000 -v staff=20 -v tickets=200000 -v login_users=50 \
--        -v fast_hash=… -v slow_hash=… -f bench/seed.sql postgres://…/tickets_bench
--
-- Layout, which the pgbench scripts in bench/pgbench/ rely on:
--   * users 1..staff are staff; the others are customers. The last `login_users`
--     customers carry `slow_hash` (the server's bcrypt cost) for the login benchmark;
--     everyone else carries `fast_hash` (cost 4) so that logging in before a run is
--     quick. Both hash the same password.
--   * ticket t (ids 1..tickets, oldest first) belongs to the customer that
--     bench/pgbench/ticket_author.sql computes from t: a 32-bit mix of t, whose two
--     halves multiplied pick a customer with a skew towards low ids (a few customers
--     open many tickets, most open a few, some none).
--   * ticket t is canceled when t % 10 = 7; it has 1 + (t / 10) % 5 messages (3 on
--     average): a `request` by its author first, then `response`s by staff and further
--     `request`s in turn. Only tickets with a response are resolved. Every text names
--     "order t", a word that only ticket t's messages hold (search's rare word);
--     requests say "parcel" and responses "refund", as do the topics "Refund" (search's
--     common words).
--   * priorities: about 3% urgent, 10% high, 20% low, the rest normal; about 40% of the
--     tickets are assigned to a member of staff. Both were set by one triage `PATCH`
--     an hour after opening.
--   * ticket_events holds what the service would have written for all of it, in time
--     order: `ticket.created` and a `message.created` per message, the triage's
--     `ticket.priority_changed` and `ticket.assigned`, and a `ticket.status_changed`
--     from pending two hours after the last message when the status is not pending
--     (by the author for a cancel, else by the assignee or the first responder). A
--     ticket's version is its events' count less one, as the service keeps it, and its
--     updated_at is the time of its last event.

\set ON_ERROR_STOP on

SET synchronous_commit = off;
SET work_mem = '256MB';
-- The rows are consistent by construction, so the foreign-key triggers (one lookup per
-- row) are skipped while seeding.
SET session_replication_role = replica;

-- Where the time goes (1,000,000 tickets, quiet 2-core machine, about 195 s in all):
-- messages 115-130 s, nearly all of it `to_tsvector` for the generated `search` column
-- (about 45 µs a message, which no way of inserting avoids); ticket_events 33-37 s;
-- tickets 18-29 s. The text-search (GIN) indexes stay in place: dropping them before
-- the rows and building them after took as long (16.9 s for messages' build alone),
-- since their pending lists (`fastupdate`) already merge new entries in bulk.

INSERT INTO users (id, created_at, email, username, password_hash, is_staff, is_superuser)
OVERRIDING SYSTEM VALUE
SELECT g,
       now() - interval '800 days' + g * (interval '400 days' / :users),
       CASE WHEN g <= :staff THEN 'staff' ELSE 'customer' END || g || '@bench.example',
       CASE WHEN g <= :staff THEN 'Agent ' ELSE 'Customer ' END || g,
       CASE WHEN g > :users - :login_users THEN :'slow_hash' ELSE :'fast_hash' END,
       g <= :staff,
       g = 1
FROM generate_series(1, :users) AS g;

INSERT INTO tickets (id, created_at, updated_at, author_id, topic, status, priority,
                     assignee_id, version)
OVERRIDING SYSTEM VALUE
SELECT t,
       created,
       created + greatest(replies * interval '3 hours'
                              + CASE WHEN status <> 'pending' THEN interval '2 hours'
                                     ELSE interval '0' END,
                          CASE WHEN triaged THEN interval '1 hour' ELSE interval '0' END),
       :staff + 1 + (((x & 65535) * (x >> 16) * (:users - :staff)) >> 32),
       (ARRAY['Refund', 'Charged twice', 'Late delivery', 'Broken item', 'Cannot log in',
              'Change address', 'Cancel order', 'Invoice copy'])[1 + t % 8],
       status,
       priority,
       assignee,
       -- Opening writes two events at version 1; every later event adds one.
       1 + replies + (status <> 'pending')::int + (priority <> 'normal')::int
         + (assignee IS NOT NULL)::int
FROM generate_series(1, :tickets) AS t,
     LATERAL (SELECT now() - interval '366 days'
                     + (t - 1) * (interval '365 days' / :tickets) AS created,
                     (t / 10) % 5 AS replies) AS c,
     LATERAL (SELECT (CASE
                          WHEN t % 10 = 7 THEN 'canceled'
                          WHEN (t / 10) % 5 = 0 THEN 'pending'
                          WHEN t % 10 < 4 THEN 'resolved'
                          WHEN t % 10 < 6 THEN 'unresolved'
                          ELSE 'pending'
                      END)::ticket_status AS status) AS s,
     -- The same 32-bit mix as bench/pgbench/ticket_author.sql, step by step.
     LATERAL (SELECT (t * 2654435761) % 4294967296 AS x1) AS m1,
     LATERAL (SELECT x1 # (x1 >> 16) AS x2) AS m2,
     LATERAL (SELECT ((x2 * 73244475) % 4294967296) AS x3) AS m3,
     LATERAL (SELECT x3 # (x3 >> 16) AS x) AS m4,
     -- Priority and assignee from the high bits of two other multiplicative hashes of
     -- t, so that neither follows the status, the replies or the author.
     LATERAL (SELECT (x1 >> 16) % 100 AS p,
                     ((t * 2246822519) % 4294967296) >> 16 AS a) AS h,
     LATERAL (SELECT (CASE
                          WHEN p < 3 THEN 'urgent'
                          WHEN p < 13 THEN 'high'
                          WHEN p < 33 THEN 'low'
                          ELSE 'normal'
                      END)::ticket_priority AS priority,
                     CASE WHEN a % 100 < 40 THEN 1 + (a / 100) % :staff END AS assignee)
         AS w,
     LATERAL (SELECT priority <> 'normal' OR assignee IS NOT NULL AS triaged) AS tr;

-- Inserted in time order, as a live service would have written them, so that one
-- ticket's messages lie apart in the table as they do in production.
INSERT INTO messages (ticket_id, author_id, created_at, type, text)
SELECT t.id,
       CASE WHEN j % 2 = 1 THEN 1 + (t.id + j) % :staff ELSE t.author_id END,
       t.created_at + j * interval '3 hours',
       (CASE WHEN j % 2 = 1 THEN 'response' ELSE 'request' END)::message_type,
       CASE WHEN j % 2 = 1
            THEN 'Thank you for waiting. We have looked into order ' || t.id
                 || ' and ' || repeat('the refund is on its way to your card. ', (1 + (t.id + j) % 4)::int)
            ELSE 'Hello, about my order ' || t.id || ': '
                 || repeat('the parcel has still not arrived and nobody answers the phone. ',
                           (1 + (t.id + j) % 5)::int)
       END
FROM tickets AS t,
     generate_series(0, (t.id / 10) % 5) AS j
ORDER BY t.created_at + j * interval '3 hours', t.id;

-- The events, in the order the service would have appended them: by time, and within
-- one ticket and moment in the order of its writes (the opening's two events; the
-- triage's priority before its assignee, as `TicketChanges::events` lists them). The
-- data is the contract's ("History"), as crates/postgres/src/events.rs encodes it.
INSERT INTO ticket_events (ticket_id, created_at, actor_id, type, internal, data)
SELECT ticket_id, at, actor_id, type::ticket_event_type, false, data
FROM (
    SELECT t.id AS ticket_id, t.created_at AS at, 0 AS step, 0::bigint AS n,
           t.author_id AS actor_id, 'ticket.created' AS type,
           jsonb_build_object('topic', t.topic, 'status', 'pending', 'priority', 'normal')
               AS data
    FROM tickets t
    UNION ALL
    SELECT m.ticket_id, m.created_at, 1, m.id, m.author_id, 'message.created',
           jsonb_build_object('message_id', m.id, 'type', m.type)
    FROM messages m
    UNION ALL
    SELECT t.id, t.created_at + interval '1 hour', 2, 0,
           coalesce(t.assignee_id, 1 + t.id % :staff), 'ticket.priority_changed',
           jsonb_build_object('from', 'normal', 'to', t.priority)
    FROM tickets t
    WHERE t.priority <> 'normal'
    UNION ALL
    SELECT t.id, t.created_at + interval '1 hour', 3, 0, t.assignee_id, 'ticket.assigned',
           jsonb_build_object('from', NULL, 'to', t.assignee_id)
    FROM tickets t
    WHERE t.assignee_id IS NOT NULL
    UNION ALL
    SELECT t.id, t.updated_at, 4, 0,
           CASE WHEN t.status = 'canceled' THEN t.author_id
                ELSE coalesce(t.assignee_id, 1 + (t.id + 1) % :staff) END,
           'ticket.status_changed',
           jsonb_build_object('from', 'pending', 'to', t.status)
    FROM tickets t
    WHERE t.status <> 'pending'
) AS history
ORDER BY at, ticket_id, step, n;

UPDATE users AS u
SET tickets_count = c.n
FROM (SELECT author_id, count(*) AS n FROM tickets GROUP BY author_id) AS c
WHERE u.id = c.author_id;

RESET session_replication_role;

SELECT setval(pg_get_serial_sequence('users', 'id'), :users),
       setval(pg_get_serial_sequence('tickets', 'id'), :tickets) \g /dev/null

-- Sets hint bits and the visibility map now, so that autovacuum does not start in the
-- middle of a measured round, and gives the planner fresh statistics.
VACUUM (ANALYZE) users, tickets, messages, ticket_events;
