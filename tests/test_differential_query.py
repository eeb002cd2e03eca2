"""Differential tests (issue 23): querystring values and `_token`s at the edges, client-supplied `last_modified`,
`_fields` on one object, groups without members, history filters on numeric-looking ids.

Same scenario on the reference Kinto and on ours, transcripts compared with test_differential's normaliser; a 400's
`message` and `details` are compared too (the normaliser keeps only code/errno/error/locations), since these
descriptions are Kinto's own (`Invalid value for _since`, `_token has invalid content`, colander's messages).
"""

import base64
import json
import random

from api import uid
from test_differential import Recorder, diff, normalise


def b64(obj):
    return base64.b64encode(json.dumps(obj).encode()).decode()


def token(last_object, **extra):
    return b64({"last_object": last_object, **{"offset": 0, "nonce": "x", **extra}})


BAD_VALUES = [
    "last_modified=", 'last_modified="12', 'last_modified=12"', "last_modified=null", "last_modified=true",
    "last_modified=[1]", "last_modified=1.5", 'last_modified="1"',
    "gt_last_modified=", 'gt_last_modified=""1""', "gt_last_modified=true", "gt_last_modified=null",
    "gt_last_modified=-1", "gt_last_modified=1.5", "lt_last_modified=1.5", 'gt_last_modified="1"',
    "in_last_modified=1,2", "exclude_last_modified=1", "contains_last_modified=1", "has_last_modified=true",
    "has_last_modified=0", "has_last_modified=1", "not_last_modified=1",
    "_since=", '_since="', '_since="1', '_since="1.5"', "_since=abc", "_since=true", "_since=-1", "_since=1.5",
    "_since=1e3", "_since=%201", "_since=1_0", "_since=[1]", "_since={}", '_since={"a":1}', "_since=[]",
    '_since=""', "_since=9223372036854775809", "_since=99999999999999", "_since=null", "_before=null",
    "_before=", "_to=", "_to=null",
    "_limit=1.5", "_limit=", "_limit=null", "_limit=[]", "_limit=true", "_limit=9223372036854775809",
    "like_x=1&_since=abc&_limit=abc",
    "id=1", "id=1.5", "id=[1]", 'id={"a":1}', "id=null", "id=true", "id=", "id=[]", 'id="r1"', "eq_id=1",
    "in_id=1", "in_id=r1,1", "in_id=r1,r2", "has_id=1", "like_title=1", "like_title=x",
    # A filter on a string field with a non-string value: no error, no match.
    "title=1", "title=x1", "title=true", "title=null", "title=[1]", "n=1", 'n="1"',
]

BAD_TOKENS = [
    "", "notbase64!!", "null", "true", "1", "[1]", b64([1]), b64({"last_object": {}, "offset": 0}),
    token({}), token({"last_modified": "abc"}), token({"last_modified": 1}, offset=-1),
    token({"last_modified": 1}, offset=1.5), token({"last_modified": 1}, offset=True),
    token({"last_modified": 1}, offset="1"), b64({"last_object": {"last_modified": 1}, "nonce": "x"}),
    b64({"last_object": {"last_modified": 1}, "offset": 0}), b64({"last_object": [1], "offset": 0, "nonce": "x"}),
    token({"last_modified": [1]}), token({"last_modified": True}), token({"last_modified": '"1"'}),
    token({"last_modified": "1"}), token({"last_modified": 1}, nonce=1), token({"last_modified": 99999999999999}),
    token({"last_modified": 1})[:-2], "!" + token({"last_modified": 1}),
    base64.urlsafe_b64encode(json.dumps({"last_object": {"last_modified": 1, "t": "\u00ff?>"}, "offset": 0,
                                         "nonce": "x"}).encode()).decode(),
]
SORTED_TOKENS = [  # with _sort=title: the title value is checked too
    token({"last_modified": 1, "title": [1]}), token({"last_modified": 1, "title": {"a": 1}}),
    token({"last_modified": 1, "title": "x1"}), token({"last_modified": 1}),
]


def query_scenario(call, bid):
    recs = f"/buckets/{bid}/collections/c/records"
    call("PUT", f"/buckets/{bid}")
    call("PUT", f"/buckets/{bid}/collections/c")
    for i in range(3):
        call("PUT", f"{recs}/r{i}", json={"data": {"title": f"x{i}", "n": i}})
    call("DELETE", f"{recs}/r2")
    for q in BAD_VALUES:
        call("GET", f"{recs}?{q}")
    for t in BAD_TOKENS:
        call("GET", f"{recs}?_token={t}")
    for t in SORTED_TOKENS:
        call("GET", f"{recs}?_sort=title&_token={t}")
    # A token the server made reads back, on a list sorted by any field.
    page = call("GET", f"{recs}?_limit=1&_sort=title")
    call("GET", page.headers.get("Next-Page", f"{recs}?_token=missing"))


def timestamps_scenario(call, bid):
    """Client-supplied `last_modified` on creation and update; `_since`/`_before`/`_to` bounds are exclusive."""
    recs = f"/buckets/{bid}/collections/c/records"
    call("PUT", f"/buckets/{bid}")
    call("PUT", f"/buckets/{bid}/collections/c")
    call("PUT", f"{recs}/r0", json={"data": {"t": 0}})
    list_ts = int(call("GET", recs).headers["ETag"].strip('"'))
    call("PUT", f"{recs}/zero", json={"data": {"last_modified": 0}})
    call("PUT", f"{recs}/five", json={"data": {"last_modified": 5}})
    call("POST", recs, json={"data": {"id": "three", "last_modified": 3}})
    call("GET", recs)
    call("PUT", f"{recs}/same", json={"data": {"last_modified": list_ts}})
    call("PUT", f"{recs}/ahead", json={"data": {"last_modified": list_ts + 1000}})
    call("GET", recs)
    call("PUT", f"{recs}/five", json={"data": {"last_modified": 4}})  # older than itself: a fresh timestamp
    call("PATCH", f"{recs}/zero", json={"data": {"last_modified": list_ts + 2000}})  # newer: kept
    call("PUT", f"{recs}/r0", json={"data": {"last_modified": "12"}})  # not an integer: dropped
    for q in ("_since=0", "_since=3", "_before=5", "_before=3", "_to=5", "_since=null", "_before=null",
              f"_since={list_ts}", "min_last_modified=3", "max_last_modified=3", "last_modified=3"):
        call("GET", f"{recs}?{q}")
    call("DELETE", f"{recs}/three")
    for q in ("_since=null", "_before=null", "_since=0&_before=5"):
        call("GET", f"{recs}?{q}")


def fields_and_groups_scenario(call, bid):
    recs = f"/buckets/{bid}/collections/c/records"
    call("PUT", f"/buckets/{bid}")
    call("PUT", f"/buckets/{bid}/collections/c")
    call("PUT", f"{recs}/r0", json={"data": {"t": 0, "u": {"v": 1, "w": 2}}})
    call("GET", f"{recs}/r0?_fields=t")
    call("GET", f"{recs}/r0?_fields=u.v,missing")
    call("GET", f"/buckets/{bid}?_fields=id")
    call("GET", f"/buckets/{bid}/collections/c?_fields=last_modified")
    call("PUT", f"{recs}/r0?_fields=t", json={"data": {"t": 1, "u": 2}})  # only GET cuts
    call("PATCH", f"{recs}/r0?_fields=t", json={"data": {"t": 2}})
    call("GET", f"{recs}?_fields=t")
    # A group written with permissions only gets no `members`; with `data` it gets `members: []`.
    call("PUT", f"/buckets/{bid}/groups/g1", json={"permissions": {"read": ["system.Everyone"]}})
    call("GET", f"/buckets/{bid}/groups/g1")
    call("PUT", f"/buckets/{bid}/groups/g2", json={"data": {}})
    call("PUT", f"/buckets/{bid}/groups/g3", json={"data": {"title": "t"}})
    call("PATCH", f"/buckets/{bid}/groups/g1", json={"permissions": {"read": []}})
    call("GET", f"/buckets/{bid}/groups/g1")
    call("PATCH", f"/buckets/{bid}/groups/g1", json={"data": {"title": "t"}})
    call("GET", f"/buckets/{bid}/groups")


def history_scenario(call, bid):
    call("PUT", f"/buckets/{bid}")
    call("PUT", f"/buckets/{bid}/collections/456")
    call("PUT", f"/buckets/{bid}/collections/456/records/789", json={"data": {}})
    call("PUT", f"/buckets/{bid}/groups/12", json={"data": {"members": []}})
    hist = f"/buckets/{bid}/history"
    for q in (f"bucket_id={bid}", f'bucket_id="{bid}"', "collection_id=456", 'collection_id="456"',
              "record_id=789", "group_id=12", 'group_id="12"', "in_collection_id=456", "not_collection_id=456",
              "bucket_id=true", "resource_name=collection", "uri=1"):
        call("GET", f"{hist}?{q}&_sort=last_modified", loose=True)


def errors_of(recorder):
    """The message and details of each 400, which the normaliser leaves out."""
    return [(e["method"], e["path"].split("?", 1)[-1], e["body"].get("message"), e["body"].get("details"))
            for e in recorder.entries if e["status"] == 400 and isinstance(e["body"], dict)]


def compare(pool, target, scenario, profile="default", bid=None):
    reference = pool.get("ref", profile)
    other = pool.get("ref", "twin" if profile == "default" else "plugins_twin") if target == "ref" \
        else pool.get(target, profile)
    bid = bid or uid("dq")
    ref_rec, our_rec = Recorder(reference), Recorder(other)
    scenario(ref_rec, bid)
    scenario(our_rec, bid)
    expected, actual = normalise(ref_rec), normalise(our_rec)
    assert expected == actual, "\n" + diff(expected, actual)
    ref_errors, our_errors = errors_of(ref_rec), errors_of(our_rec)
    mismatches = [(e, a) for e, a in zip(ref_errors, our_errors) if e != a]
    assert not mismatches, "\n".join(f"ref : {e}\nours: {a}" for e, a in mismatches[:20])
    return ref_rec


def test_malformed_values_and_tokens_match_reference(pool, target):
    rec = compare(pool, target, query_scenario)
    assert sum(e["status"] == 400 for e in rec.entries) >= 50


def test_client_supplied_last_modified_matches_reference(pool, target):
    compare(pool, target, timestamps_scenario)


def test_fields_on_objects_and_groups_without_members_match_reference(pool, target):
    compare(pool, target, fields_and_groups_scenario)


def test_history_filters_on_numeric_ids_match_reference(pool, target):
    # A bucket id made of digits, the same on both servers.
    compare(pool, target, history_scenario, profile="plugins", bid=str(random.randint(10**8, 10**9 - 1)))
