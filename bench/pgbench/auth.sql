-- find_active_caller (crates/postgres/src/users.rs), on every authenticated request.
SELECT id, is_staff, is_superuser FROM users WHERE id = :uid AND is_active;
