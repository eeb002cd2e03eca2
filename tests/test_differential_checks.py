"""Differential tests (issue 23): account ids, the order of Kinto's checks on a PATCH, and batch sub-requests, each
scenario run on the reference Kinto and on ours, transcripts compared (see test_differential.py).

Where the normaliser keeps too little of a 400 (only code/errno/error/locations), the messages are compared
explicitly against the reference's.
"""

import json
import re

from api import uid, user_id
from test_differential import Recorder, diff, normalise

STALE = '"123"'  # an ETag no object has


def compare(pool, target, scenario, profile="default", users=(), messages=False):
    """Runs `scenario(call)` on the reference and on `target` (a second reference for `ref`), then compares."""
    twin = {"default": "twin", "plugins": "plugins_twin"}[profile]
    reference = pool.get("ref", profile)
    other = pool.get("ref", twin) if target == "ref" else pool.get(target, profile)
    ref_rec, our_rec = Recorder(reference, users), Recorder(other, users)
    scenario(ref_rec)
    scenario(our_rec)
    expected, actual = canonical(normalise(ref_rec)), canonical(normalise(our_rec))
    assert expected == actual, "\n" + diff(expected, actual, detailed=12)
    if messages:
        # Same steps, same statuses: now the 400s' wording, which the normaliser drops.
        for e, a in zip(ref_rec.entries, our_rec.entries):
            assert error_messages(e["body"]) == error_messages(a["body"]), f"{e['method']} {e['path']}"


TYPES_RE = re.compile(r"should be one of \[([^]]*)\]")


def canonical(transcript):
    """Kinto lists a 415's accepted types in set order, which varies between runs: sorted here."""
    def fix(v):
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        if isinstance(v, str):
            return TYPES_RE.sub(lambda m: "should be one of [" + ", ".join(sorted(m.group(1).split(", "))) + "]", v)
        return v
    return fix(transcript)


def error_messages(body):
    """The `message` of an error body, or of each sub-response of a batch."""
    if isinstance(body, dict) and isinstance(body.get("responses"), list):
        return [error_messages(r.get("body")) for r in body["responses"]]
    if isinstance(body, dict) and "errno" in body:
        return canonical(body.get("message"))
    return None


# --- 1. Accounts: e-mail ids (with `+`), other users' accounts ---------------------------------------------------

def accounts_scenario(tag):
    mail, plus, posted = f"alice{tag}@example.com", f"al+{tag}@example.org", f"b+{tag}@x.org"

    def run(call):
        call("PUT", f"/accounts/{mail}", user="anon", json={"data": {"password": "pw"}})
        call("PUT", f"/accounts/{plus}", user="anon", json={"data": {"password": "pw"}})
        call("POST", "/accounts", user="anon", json={"data": {"id": posted, "password": "pw"}})
        call("GET", f"/accounts/{mail}", user="mail")
        call("GET", f"/accounts/{plus}", user="plus")
        # (Not listed as `plus`: Kinto's memory backend matches the parent id as a regular expression, where
        # `+` is an operator, so the reference lists nothing; its PostgreSQL backend lists the account.)
        call("GET", "/accounts", user="mail", loose=True)
        call("PATCH", f"/accounts/{plus}", user="plus", json={"data": {"password": "pw"}})
        # Another user's account, existing or not, by an account and by a basicauth user.
        for user in ("plus", "bob"):
            call("GET", f"/accounts/{mail}", user=user)
            call("PUT", f"/accounts/{mail}", user=user, json={"data": {"password": "x"}})
            call("PATCH", f"/accounts/{mail}", user=user, json={"data": {"password": "x"}})
            call("DELETE", f"/accounts/{mail}", user=user)
            call("PUT", f"/accounts/nobody{tag}", user=user, json={"data": {"password": "x"}})
            call("PATCH", f"/accounts/nobody{tag}", user=user, json={"data": {"password": "x"}})
            call("DELETE", f"/accounts/nobody{tag}", user=user)
            call("POST", "/accounts", user=user, json={"data": {"id": f"other{tag}", "password": "x"}})
        # Ids outside the rule.
        for bad in (f".{tag}", f"+{tag}", f"@{tag}", f"a~{tag}", f"a%20{tag}", f"a%2F{tag}"):
            call("PUT", f"/accounts/{bad}", user="anon", json={"data": {"password": "pw"}})
        call("POST", "/accounts", user="anon", json={"data": {"id": f"+{tag}", "password": "pw"}})
        call("POST", "/accounts", user="anon", json={"data": {"id": f"a b{tag}", "password": "pw"}})
        call("DELETE", f"/accounts/{plus}", user="plus")
        call("DELETE", f"/accounts/{mail}", user="mail")
        call("DELETE", f"/accounts/{posted}", user="posted")

    users = {"mail": (mail, "pw"), "plus": (plus, "pw"), "posted": (posted, "pw")}
    return run, users


def test_account_ids_and_ownership_match_reference(pool, target):
    run, users = accounts_scenario(uid(""))
    compare(pool, target, run, profile="plugins", users=users, messages=True)


# --- 2. Order of checks: a PATCH without changes --------------------------------------------------------------------
# Kinto's `patch()` asks for `data` or `permissions` only after its permission check, its 404 and its 412.

def order_scenario(bid):
    def run(call):
        b = f"/buckets/{bid}"
        call("PUT", b, json={"data": {}})
        call("PUT", f"{b}/collections/c", json={"data": {}})
        call("PUT", f"{b}/groups/g", json={"data": {"members": []}})
        call("PUT", f"{b}/collections/c/records/r", json={"data": {"x": 1}})
        objects = [b, f"{b}/collections/c", f"{b}/groups/g", f"{b}/collections/c/records/r",
                   f"{b}/collections/c/records/gone", f"{b}/groups/gone", f"{b}/collections/gone",
                   f"{b}x", f"{b}x/collections/c"]
        for path in objects:
            for user in ("alice", "bob", "anon"):
                for headers in ({"If-Match": STALE}, {"If-None-Match": "*"}, {}):
                    for body in ({"json": {}}, {"data": b"", "headers": {"Content-Type": "application/json"}}):
                        call("PATCH", path, user=user, **{**body, "headers": {**body.get("headers", {}), **headers}})
        call("DELETE", b)

    return run


def test_patch_without_changes_checks_permissions_and_preconditions_first(pool, target):
    compare(pool, target, order_scenario(uid("order")), messages=True)


# --- 3. Batch sub-requests ----------------------------------------------------------------------------------------

def batch_scenario(bid):
    def run(call):
        b = f"/buckets/{bid}"
        call("PUT", b, json={"data": {}})
        call("PUT", f"{b}/collections/c", json={"data": {}})
        call("PUT", f"{b}/collections/c/records/r", json={"data": {"x": 1}})
        rec = f"{b}/collections/c/records/r"
        call("POST", "/batch", json={"requests": [{"method": "HEAD", "path": rec},
                                                   {"method": "HEAD", "path": f"{b}/collections/c/records"},
                                                   {"method": "HEAD", "path": f"{rec}x"},
                                                   {"method": "GET", "path": rec}]})
        call("POST", "/batch", json={"defaults": {"method": "HEAD"}, "requests": [{"path": rec}]})
        for method in ("get", "Get", "FOO", "", "TRACE", "OPTIONS", "CONNECT", 5, None):
            call("POST", "/batch", json={"requests": [{"method": method, "path": rec}]})
        call("POST", "/batch", json={"defaults": {"method": "get"}, "requests": [{"path": rec}]})
        for headers in ({"If-Match": "abc"}, {"If-None-Match": "abc"}, {"If-Match": STALE},
                        {"If-None-Match": "*"}, {"Content-Type": "text/plain"}):
            call("POST", "/batch", json={"requests": [
                {"method": "PATCH", "path": rec, "headers": headers, "body": {"data": {"y": 2}}},
                {"method": "GET", "path": rec, "headers": headers}]})
        call("POST", "/batch", json={"requests": [{"method": "PATCH", "path": rec, "body": {}}]})
        call("POST", "/batch", json={"requests": [{"method": "GET", "path": f"{b}/collections/c/records?_limit=x"}]})
        call("DELETE", b)

    return run


def test_batch_sub_requests_match_reference(pool, target):
    compare(pool, target, batch_scenario(uid("bt")), messages=True)
