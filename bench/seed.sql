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
--     `request`s in turn. Only tickets with a response are resolved.

\set ON_ERROR_STOP on

SET synchronous_commit = off;
SET work_mem = '256MB';
-- The rows are consistent by construction, so the foreign-key triggers (one lookup per
-- row) are skipped while seeding.
SET session_replication_role = replica;

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

INSERT INTO tickets (id, created_at, updated_at, author_id, topic, status)
OVERRIDING SYSTEM VALUE
SELECT t,
       created,
       created + ((t / 10) % 5) * interval '3 hours',
       :staff + 1 + (((x & 65535) * (x >> 16) * (:users - :staff)) >> 32),
       (ARRAY['Refund', 'Charged twice', 'Late delivery', 'Broken item', 'Cannot log in',
              'Change address', 'Cancel order', 'Invoice copy'])[1 + t % 8],
       (CASE
            WHEN t % 10 = 7 THEN 'canceled'
            WHEN (t / 10) % 5 = 0 THEN 'pending'
            WHEN t % 10 < 4 THEN 'resolved'
            WHEN t % 10 < 6 THEN 'unresolved'
            ELSE 'pending'
        END)::ticket_status
FROM generate_series(1, :tickets) AS t,
     LATERAL (SELECT now() - interval '366 days'
                     + (t - 1) * (interval '365 days' / :tickets) AS created) AS c,
     -- The same 32-bit mix as bench/pgbench/ticket_author.sql, step by step.
     LATERAL (SELECT (t * 2654435761) % 4294967296 AS x1) AS m1,
     LATERAL (SELECT x1 # (x1 >> 16) AS x2) AS m2,
     LATERAL (SELECT ((x2 * 73244475) % 4294967296) AS x3) AS m3,
     LATERAL (SELECT x3 # (x3 >> 16) AS x) AS m4;

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

UPDATE users AS u
SET tickets_count = c.n
FROM (SELECT author_id, count(*) AS n FROM tickets GROUP BY author_id) AS c
WHERE u.id = c.author_id;

RESET session_replication_role;

SELECT setval(pg_get_serial_sequence('users', 'id'), :users),
       setval(pg_get_serial_sequence('tickets', 'id'), :tickets) \g /dev/null

-- Sets hint bits and the visibility map now, so that autovacuum does not start in the
-- middle of a measured round, and gives the planner fresh statistics.
VACUUM (ANALYZE) users, tickets, messages;
