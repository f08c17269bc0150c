-- confirm_caller (migrations/V4__confirm_caller.sql, crates/postgres/src/confirm.rs):
-- a write confirms the caller's role and activity first in its transaction, in the same
-- round trip as its statement. bench/seed.sql makes user 1, the first member of staff,
-- a superuser.
SELECT confirm_caller(:uid, :sees_all = 1, :uid = 1);
