"""Differential tests (issue 23): the order of Kinto's checks. Kinto validates the URL, querystring and body (400),
then the content type (415), authenticates (401), checks permissions (403), existence (404), then preconditions
(412). The matrix below sends requests that fail several checks at once, as each kind of caller (anonymous, a user
without permission, the owner), on objects and plural endpoints of every resource, with existing and missing
parents, and compares the answers with the reference Kinto's (see test_differential.py).
"""

import pytest

from api import uid
from test_differential import diff, normalise, record_both
from test_differential_checks import canonical

BAD_BODY = b'{"data": "not an object"}'
BAD_PERMISSIONS = b'{"data": {}, "permissions": {"read": 5}}'
GOOD_BODY = b'{"data": {}}'
JSON = {"Content-Type": "application/json"}

# name -> (query, headers, body); bodies only matter for writes.
FAULTS = {
    "body": ("", JSON, BAD_BODY),
    "perms": ("", JSON, BAD_PERMISSIONS),
    "ctype": ("", {"Content-Type": "text/plain"}, GOOD_BODY),
    "ctype+body": ("", {"Content-Type": "text/plain"}, BAD_BODY),
    "if-match": ("", {**JSON, "If-Match": "abc"}, GOOD_BODY),
    "stale": ("", {**JSON, "If-Match": '"123"'}, GOOD_BODY),
    "stale+body": ("", {**JSON, "If-Match": '"123"'}, BAD_BODY),
    "query": ("?_since=abc", JSON, GOOD_BODY),
    "query+stale": ("?_since=abc", {**JSON, "If-Match": '"123"'}, GOOD_BODY),
}


def assert_same(ref_rec, our_rec):
    """Transcripts equal, but for the order of a 415's accepted types (a set in Kinto)."""
    expected, actual = canonical(normalise(ref_rec)), canonical(normalise(our_rec))
    assert expected == actual, "\n" + diff(expected, actual, detailed=12)


def paths(bid):
    b = f"/buckets/{bid}"
    return {
        "bucket": (b, "/buckets"),
        "group": (f"{b}/groups/g", f"{b}/groups"),
        "collection": (f"{b}/collections/c", f"{b}/collections"),
        "record": (f"{b}/collections/c/records/r", f"{b}/collections/c/records"),
        "group-missing-bucket": (f"/buckets/{bid}x/groups/g", f"/buckets/{bid}x/groups"),
        "collection-missing-bucket": (f"/buckets/{bid}x/collections/c", f"/buckets/{bid}x/collections"),
        "record-missing-collection": (f"{b}/collections/cx/records/r", f"{b}/collections/cx/records"),
    }


def setup(call, bid):
    b = f"/buckets/{bid}"
    call("PUT", b)
    call("PUT", f"{b}/groups/g", json={"data": {"members": []}})
    call("PUT", f"{b}/collections/c")
    call("PUT", f"{b}/collections/c/records/r")


def matrix(call, bid, methods, plural):
    setup(call, bid)
    for kind, (obj, plur) in paths(bid).items():
        path = plur if plural else obj
        for method in methods:
            if plural and kind == "bucket" and method == "DELETE":
                continue  # DELETE /buckets would reach other tests' buckets
            for fault, (query, headers, body) in FAULTS.items():
                if plural and kind == "bucket" and "stale" in fault:
                    continue  # a 412's ETag is one shard's bucket-list timestamp (ARCHITECTURE.md)
                for user in ("anon", "bob", "alice"):
                    if plural and kind == "bucket" and method == "GET":
                        continue  # lists other tests' buckets shared with everyone
                    kw = {"headers": headers}
                    if method in ("PUT", "PATCH", "POST"):
                        kw["data"] = body
                    call(method, path + query, user=user, **kw)


@pytest.mark.parametrize("methods", [("GET", "PUT", "PATCH"), ("DELETE",)], ids=["read-write", "delete"])
def test_order_of_checks_on_objects(pool, target, methods):
    ref_rec, our_rec = record_both(pool, target, matrix, uid("order"), methods, False)
    assert_same(ref_rec, our_rec)


@pytest.mark.parametrize("methods", [("GET", "POST"), ("DELETE",)], ids=["read-write", "delete"])
def test_order_of_checks_on_plurals(pool, target, methods):
    ref_rec, our_rec = record_both(pool, target, matrix, uid("order"), methods, True)
    assert_same(ref_rec, our_rec)


def known_cases(call, bid):
    """The cases issue 23 names, each with Kinto's answer."""
    b = f"/buckets/{bid}"
    setup(call, bid)
    records = f"{b}/collections/c/records"
    # An existing record POSTed again with invalid permissions: 400, not the existing record.
    call("POST", records, json={"data": {"id": "r"}, "permissions": {"read": 5}})
    call("POST", records, json={"data": {"id": "r"}, "permissions": {"read": 5}}, user="bob")
    for user in ("anon", "bob", "alice"):
        call("GET", "/buckets/a b", user=user)
        call("POST", "/buckets/a b/groups", json={"data": {}}, user=user)
        call("PUT", f"/buckets/{bid}/collections/a b", json={"data": {}}, user=user)
    for value in ("NaN", "Infinity", "-Infinity", "1.5"):
        for param in ("_since", "_before", "eq_last_modified", "gt_last_modified", "_limit"):
            call("GET", f"{records}?{param}={value}")
            call("GET", f"{records}?{param}={value}", user="bob")


def test_known_cases(pool, target):
    ref_rec, our_rec = record_both(pool, target, known_cases, uid("order"))
    assert_same(ref_rec, our_rec)
