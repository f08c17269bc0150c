-- confirm_caller (migrations/V4__confirm_caller.sql, crates/postgres/src/confirm.rs):
-- the service confirms the caller's role and activity in the same round trip as the
-- endpoint's statement (first in a write's transaction). bench/seed.sql makes user 1, the
-- first member of staff, a superuser.
SELECT confirm_caller(:uid, :sees_all = 1, :uid = 1);
