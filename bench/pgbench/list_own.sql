-- GET /tickets?limit=20 by a customer: list_visible's statement for "own tickets,
-- first page, no filter, ascending".
SELECT t.id, t.created_at, t.updated_at, t.author_id, u.email AS author_email, t.topic,
t.status, t.priority, t.assignee_id, a.username AS assignee_username, t.version
FROM (SELECT t.* FROM tickets t WHERE true AND t.author_id = :uid ORDER BY t.created_at ASC, t.id ASC LIMIT :fetch_tickets) t
JOIN users u ON u.id = t.author_id LEFT JOIN users a ON a.id = t.assignee_id
ORDER BY t.created_at ASC, t.id ASC;
