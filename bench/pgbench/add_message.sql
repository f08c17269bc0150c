-- POST /tickets/{id}/messages: ADD_MESSAGE (its second statement runs only on failure).
WITH t AS (
UPDATE tickets SET updated_at = now()
WHERE id = :t AND (author_id = :uid OR :sees_all) AND status <> :canceled::ticket_status
RETURNING id
), m AS (
INSERT INTO messages (ticket_id, author_id, type, text)
SELECT t.id, :uid, :kind::message_type, :text FROM t
RETURNING id, ticket_id, created_at, type, text, author_id
)
SELECT m.id, m.ticket_id, m.created_at, m.type, m.text, m.author_id, u.email AS author_email
FROM m JOIN users u ON u.id = m.author_id;
