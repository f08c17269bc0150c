-- Confirming a request's caller inside the request's own statements.
--
-- A token says who its user was when it was issued (id and role); the contract wants
-- the role and activity read afresh on every request. The adapter sends
-- `SELECT confirm_caller(...)` in the same round trip as the request's first statement
-- (first in its transaction, for a write) instead of a round trip of its own. When the
-- user is gone, deactivated or has another role now, it fails with SQLSTATE TKC01
-- (class TK is not PostgreSQL's), which aborts the transaction before anything is
-- written; the service then reads the caller afresh and decides again.
CREATE FUNCTION confirm_caller(caller bigint, staff boolean, superuser boolean)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    PERFORM 1 FROM users
    WHERE id = caller AND is_active AND is_staff = staff AND is_superuser = superuser;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the caller is not as the request assumed'
            USING ERRCODE = 'TKC01';
    END IF;
END
$$;
