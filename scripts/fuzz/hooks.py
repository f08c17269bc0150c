"""Schemathesis hooks of `just fuzz` (loaded through SCHEMATHESIS_HOOKS).

`positive_data_acceptance` expects every schema-valid request to be accepted. A few of
the service's refusals depend on things that no JSON Schema can state: those, and only
when the request really is in that situation, are not counted as failures. Anything
else, and every refusal of every other check, still fails the run.
"""

import json
import os
import re

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData

# Problem `code`s of refusals that depend on server state or on the caller's role.
STATE_DEPENDENT = {
    # A cursor is valid only if the server handed it out (it is signed).
    "cursor_invalid",
    # Whether `current_password` is the user's password is a credential check.
    "current_password_incorrect",
    # Which statuses a caller may set depends on their role (customers: `canceled`;
    # staff: the others), and the document has one schema for every caller.
    "status_not_allowed",
    # Whether a user id is an active member of staff is the database's to say.
    "assignee_invalid",
    # Whether `If-Match` holds the ticket's current version depends on what was
    # written before.
    "precondition_failed",
    # Whether an `Idempotency-Key` was used before, for another request, likewise.
    "idempotency_key_reused",
}


def problem_code(response):
    try:
        return json.loads(response.content).get("code")
    except (ValueError, AttributeError):
        return None


def body_field(case, name):
    body = case.body if isinstance(case.body, dict) else {}
    value = body.get(name)
    return value if isinstance(value, str) else ""


def too_long_for_bcrypt(case):
    """The password holds at most 72 characters (what JSON Schema can count) but more
    than 72 bytes of UTF-8 (the service's limit)."""
    return len(body_field(case, "password").encode("utf-8")) > 72


def too_large_to_send(case):
    """The body, as JSON with non-ASCII escaped (as it was sent), exceeds the service's
    64 KiB: a 10,000-character text of emoji takes 120 KB, and JSON Schema can bound
    characters, not bytes."""
    try:
        return len(json.dumps(case.body).encode("utf-8")) > 64 * 1024
    except (TypeError, ValueError):
        return False


def webhook_url_host(case):
    """The host of the body's `url`, as the service's URL parser delimits it."""
    rest = body_field(case, "url").partition("://")[2]
    return re.split(r"[/?#\\]", rest, maxsplit=1)[0]


def punycode_label(case):
    """The `url`'s host has a label that starts with `xn--`: whether it is valid
    Punycode (which the service's URL parser checks) no regular expression can state,
    so the document's pattern takes any."""
    return any(label.lower().startswith("xn--") for label in webhook_url_host(case).split("."))


def problem_detail(response):
    try:
        return json.loads(response.content).get("detail") or ""
    except (ValueError, AttributeError):
        return ""


def waived(failure, case, response):
    """The problem code of a positive case refused for one of the reasons above."""
    if not isinstance(failure, RejectedPositiveData):
        return None
    code = problem_code(response)
    if code in STATE_DEPENDENT:
        return code
    if code == "password_too_long" and too_long_for_bcrypt(case):
        return code
    if code == "payload_too_large" and too_large_to_send(case):
        return code
    # The e-mail pattern leaves out one rule, no two dots in a row, that a regular
    # expression could state only with a lookahead or at an unwieldy length.
    if code == "email_invalid" and ".." in body_field(case, "email"):
        return code
    if code == "url_invalid" and punycode_label(case):
        return code
    # The `url` holds at most 2048 characters as sent (what maxLength counts) but more
    # once normalized: the service stores the WHATWG serialization, which
    # percent-encodes what the pattern lets through unencoded (spaces, non-ASCII), and
    # keeps that within 2048. Only the service can say how long the normalized URL is:
    # this waives only its refusal for that reason.
    if (
        code == "url_invalid"
        and "once normalized" in problem_detail(response)
        and len(body_field(case, "url")) <= 2048
    ):
        return code
    return None


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keeps every failure but the waived ones, which run.sh's summary counts by code
    (one line each in $FUZZ_WAIVER_LOG)."""
    code = waived(failure, case, response)
    if code is None:
        return True
    log = os.environ.get("FUZZ_WAIVER_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as file:
            file.write(f"{case.method} {case.path} {code}\n")
    return False
