-- Any seeded ticket.
\set t random(1, :tickets)
