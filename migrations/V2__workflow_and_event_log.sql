-- The helpdesk workflow: priority, assignment, a version for conditional writes,
-- internal notes, the ticket event log, idempotency keys, and full-text search.
-- Refinery runs each migration in one transaction.

CREATE TYPE ticket_priority AS ENUM ('low', 'normal', 'high', 'urgent');

-- A label added in a transaction cannot be used before that transaction commits, so
-- nothing below names it.
ALTER TYPE message_type ADD VALUE 'note';

ALTER TABLE tickets
    ADD COLUMN priority    ticket_priority NOT NULL DEFAULT 'normal',
    ADD COLUMN assignee_id bigint REFERENCES users (id),
    -- The optimistic-concurrency token (ETag): grows with every change a customer can
    -- see, so that it reveals nothing about internal notes.
    ADD COLUMN version     bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    -- The two-argument to_tsvector is immutable, as a generated column requires; the
    -- one-argument form depends on default_text_search_config.
    ADD COLUMN search      tsvector GENERATED ALWAYS AS (to_tsvector('english', topic)) STORED;

ALTER TABLE messages
    ADD COLUMN search tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED;

-- Staff's queues: "assigned to me", "unassigned" (assignee_id IS NULL uses it too) and
-- by priority, each paginated by (created_at, id) like the other lists.
CREATE INDEX tickets_assignee_id_created_at_id_idx ON tickets (assignee_id, created_at, id);
CREATE INDEX tickets_priority_created_at_id_idx ON tickets (priority, created_at, id);

-- Search: a topic or any message matches. Each table's matches come from its own
-- index, and the ticket ids are united (see the adapter's ticket list).
CREATE INDEX tickets_search_idx ON tickets USING gin (search);
CREATE INDEX messages_search_idx ON messages USING gin (search);

CREATE TYPE ticket_event_type AS ENUM (
    'ticket.created',
    'message.created',
    'note.created',
    'ticket.status_changed',
    'ticket.priority_changed',
    'ticket.assigned'
);

-- Every change to a ticket, appended in the same transaction as the change. Writers
-- lock the ticket's row before appending, so a ticket's event ids grow in commit order.
CREATE TABLE ticket_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id  bigint            NOT NULL REFERENCES tickets (id),
    created_at timestamptz       NOT NULL DEFAULT now(),
    -- NULL for changes that no user made. Users are never deleted, so the foreign key
    -- needs no index of its own.
    actor_id   bigint            REFERENCES users (id),
    type       ticket_event_type NOT NULL,
    -- Shown to staff only (an internal note's event); decided by the domain.
    internal   boolean           NOT NULL,
    data       jsonb             NOT NULL CHECK (jsonb_typeof(data) = 'object')
);

-- A ticket's history, oldest first, paginated by id.
CREATE INDEX ticket_events_ticket_id_id_idx ON ticket_events (ticket_id, id);

-- The history of tickets written before this migration, as far as the rows tell it:
-- their opening, their messages, and one status change to where they are now. The
-- author stands for the actor of what they wrote; a status change's actor is unknown.
INSERT INTO ticket_events (ticket_id, created_at, actor_id, type, internal, data)
SELECT ticket_id, created_at, actor_id, type::ticket_event_type, false, data
FROM (
    SELECT t.id AS ticket_id, t.created_at, t.author_id AS actor_id, 0 AS step, 0::bigint AS n,
           'ticket.created' AS type,
           jsonb_build_object('topic', t.topic, 'status', 'pending', 'priority', 'normal') AS data
    FROM tickets t
    UNION ALL
    SELECT m.ticket_id, m.created_at, m.author_id, 1, m.id, 'message.created',
           jsonb_build_object('message_id', m.id, 'type', m.type)
    FROM messages m
    UNION ALL
    SELECT t.id, t.updated_at, NULL, 2, 0, 'ticket.status_changed',
           jsonb_build_object('from', 'pending', 'to', t.status)
    FROM tickets t
    WHERE t.status <> 'pending'
) AS history
ORDER BY ticket_id, step, created_at, n;

-- A ticket's version is its visible events' count less one (opening writes two).
UPDATE tickets t SET version = e.n - 1
FROM (SELECT ticket_id, count(*) AS n FROM ticket_events GROUP BY ticket_id) e
WHERE e.ticket_id = t.id AND e.n > 2;

-- Idempotency keys, each stored in the transaction of the write it guards, with the
-- response that write answered. Keys belong to their user.
CREATE TABLE idempotency_keys (
    user_id     bigint      NOT NULL REFERENCES users (id),
    key         text        NOT NULL CHECK (octet_length(key) BETWEEN 1 AND 255),
    -- A hash of the first request's method, path and body: a repeat must match it.
    fingerprint bytea       NOT NULL CHECK (octet_length(fingerprint) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    status      smallint    NOT NULL CHECK (status BETWEEN 200 AND 299),
    location    text,
    etag        text,
    body        bytea       NOT NULL,
    PRIMARY KEY (user_id, key)
);

-- Forgetting expired keys.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
