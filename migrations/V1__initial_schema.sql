-- The initial schema of the tickets service: users, their tickets, and the messages
-- on each ticket. Rules that must hold whatever client writes the rows are CHECK
-- constraints here; the application validates the same limits first, so a violation
-- is a bug, not user input.

CREATE TYPE ticket_status AS ENUM ('pending', 'resolved', 'unresolved', 'canceled');
CREATE TYPE message_type AS ENUM ('request', 'response', 'other');

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at    timestamptz NOT NULL DEFAULT now(),
    email         text        NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    username      text        NOT NULL CHECK (char_length(username) BETWEEN 1 AND 64),
    password_hash text        NOT NULL,
    is_staff      boolean     NOT NULL DEFAULT false,
    is_superuser  boolean     NOT NULL DEFAULT false,
    is_active     boolean     NOT NULL DEFAULT true,
    -- Denormalised so that the staff user list can be ordered by it through an index;
    -- kept in step by the statement that opens a ticket.
    tickets_count bigint      NOT NULL DEFAULT 0 CHECK (tickets_count >= 0),
    -- A superuser can do all that staff can, so a superuser is always staff.
    CONSTRAINT users_superuser_is_staff CHECK (is_staff OR NOT is_superuser)
);

-- Emails are unique without regard to case, and login looks them up the same way.
-- The adapter recognises a duplicate by this index's name.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
-- The staff user list: tickets_count descending, then id, paginated by keyset.
CREATE INDEX users_tickets_count_id_idx ON users (tickets_count DESC, id);

CREATE TABLE tickets (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz   NOT NULL DEFAULT now(),
    updated_at timestamptz   NOT NULL DEFAULT now(),
    author_id  bigint        NOT NULL REFERENCES users (id),
    topic      text          NOT NULL CHECK (char_length(topic) BETWEEN 1 AND 20),
    status     ticket_status NOT NULL DEFAULT 'pending'
);

-- Keyset pagination over (created_at, id): staff's list of all tickets, a customer's
-- own tickets (also serves the foreign key), and staff's lists filtered by status.
CREATE INDEX tickets_created_at_id_idx ON tickets (created_at, id);
CREATE INDEX tickets_author_id_created_at_id_idx ON tickets (author_id, created_at, id);
CREATE INDEX tickets_status_created_at_id_idx ON tickets (status, created_at, id);

CREATE TABLE messages (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id  bigint       NOT NULL REFERENCES tickets (id),
    author_id  bigint       NOT NULL REFERENCES users (id),
    created_at timestamptz  NOT NULL DEFAULT now(),
    type       message_type NOT NULL,
    text       text         NOT NULL CHECK (char_length(text) BETWEEN 1 AND 10000)
);

-- A ticket's messages, oldest first, paginated by keyset (also serves the foreign key).
CREATE INDEX messages_ticket_id_created_at_id_idx ON messages (ticket_id, created_at, id);
-- Serves the foreign key to users.
CREATE INDEX messages_author_id_idx ON messages (author_id);
-- "Has staff responded?", which decides whether a ticket may be resolved.
CREATE INDEX messages_responses_ticket_id_idx ON messages (ticket_id) WHERE type = 'response';
