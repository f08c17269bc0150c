-- GET /tickets/{id}/messages (default limit): LIST_MESSAGES_FIRST, with the notes
-- predicate (`:internal_types`, the types only staff see, and `:sees_internal`).
WITH t AS (SELECT id FROM tickets t WHERE t.id = :t AND (t.author_id = :uid OR :sees_all))
SELECT m.* FROM t LEFT JOIN LATERAL (
SELECT m.id, m.ticket_id, m.created_at, m.type, m.text, m.author_id, u.email AS author_email
FROM messages m JOIN users u ON u.id = m.author_id
WHERE m.ticket_id = t.id AND (m.type <> ALL (:internal_types) OR :sees_internal)
ORDER BY m.created_at, m.id LIMIT :fetch_messages
) m ON true
ORDER BY m.created_at, m.id;
