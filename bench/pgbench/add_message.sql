-- POST /tickets/{id}/messages: ADD_MESSAGE, after BEGIN and confirm_caller in one
-- round trip, as the adapter's `Tx` sends them (crates/bench/src/pgbench.rs `compose`); append_events.sql follows. A request or response moves
-- the ticket (`:moves`, `:increment`); without If-Match the versions are NULL, which
-- pgbench cannot bind, so the NULL is written out. (VISIBLE_STATE runs only when
-- nothing was added.)
WITH t AS (
UPDATE tickets t SET updated_at = CASE WHEN :moves THEN now() ELSE updated_at END,
version = version + :increment
WHERE t.id = :t AND (t.author_id = :uid OR :sees_all)
AND t.status = ANY (:accepting) AND (NULL::int8[] IS NULL OR t.version = ANY (NULL::int8[]))
RETURNING t.id
), m AS (
INSERT INTO messages (ticket_id, author_id, type, text)
SELECT t.id, :uid, :kind::message_type, :text FROM t
RETURNING id, ticket_id, created_at, type, text, author_id
)
SELECT m.id, m.ticket_id, m.created_at, m.type, m.text, m.author_id, u.email AS author_email
FROM m JOIN users u ON u.id = m.author_id;
\endpipeline
