-- GET /tickets/{id}: FIND_VISIBLE.
SELECT t.id, t.created_at, t.updated_at, t.author_id, u.email AS author_email, t.topic,
t.status, t.priority, t.assignee_id, a.username AS assignee_username, t.version
FROM tickets t JOIN users u ON u.id = t.author_id LEFT JOIN users a ON a.id = t.assignee_id
WHERE t.id = :t AND (t.author_id = :uid OR :sees_all);
