-- POST /tickets: OPEN_TICKET.
WITH u AS (
UPDATE users SET tickets_count = tickets_count + 1 WHERE id = :uid RETURNING id, email
), t AS (
INSERT INTO tickets (author_id, topic, status)
SELECT u.id, :topic, :pending::ticket_status FROM u
RETURNING id, created_at, updated_at, author_id, topic, status
), first_message AS (
INSERT INTO messages (ticket_id, author_id, type, text)
SELECT t.id, t.author_id, :request::message_type, :text FROM t
)
SELECT t.id, t.created_at, t.updated_at, t.author_id, u.email AS author_email, t.topic, t.status
FROM t JOIN u ON u.id = t.author_id;
