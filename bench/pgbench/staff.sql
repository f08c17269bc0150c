-- A staff member (users 1..staff) and any seeded ticket, which staff may all see.
\set uid random(1, :staff)
\set sees_all 1
\set sees_internal 1
\set t random(1, :tickets)
