-- CURRENT_ROLE (crates/postgres/src/confirm.rs): a read looks the caller up in the same
-- round trip as the endpoint's statement and compares the role in Rust.
SELECT is_staff, is_superuser FROM users WHERE id = :uid AND is_active;
