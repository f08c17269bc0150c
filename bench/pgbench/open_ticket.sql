-- POST /tickets: OPEN_TICKET, after BEGIN and confirm_caller in one round trip, as
-- the adapter's `Tx` sends them (crates/bench/src/pgbench.rs `compose`); append_events.sql follows.
WITH u AS (
UPDATE users SET tickets_count = tickets_count + 1 WHERE id = :uid RETURNING id, email
), t AS (
INSERT INTO tickets (author_id, topic, status, priority)
SELECT u.id, :topic, :pending::ticket_status, :normal::ticket_priority FROM u
RETURNING id, created_at, updated_at, author_id, topic, status, priority, assignee_id, version
), m AS (
INSERT INTO messages (ticket_id, author_id, type, text)
SELECT t.id, t.author_id, :request::message_type, :text FROM t RETURNING id
)
SELECT t.id, t.created_at, t.updated_at, t.author_id, u.email AS author_email, t.topic,
t.status, t.priority, t.assignee_id, a.username AS assignee_username, t.version,
m.id AS message_id FROM t JOIN u ON u.id = t.author_id
LEFT JOIN users a ON a.id = t.assignee_id CROSS JOIN m;
\endpipeline
