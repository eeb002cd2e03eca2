"""POST /batch (kinto-api.md §7).

Kinto runs a batch in one transaction but commits it despite 4xx sub-responses; kinto-rs documents each
sub-request as atomic on its own. Both agree on what is tested here: a 4xx sub-request does not undo the others.
"""

import base64
import hashlib

import pytest

from api import PASSWORD, Api, assert_error, uid, user_id


def batch(api, requests, defaults=None, status=200):
    body = {"requests": requests}
    if defaults is not None:
        body["defaults"] = defaults
    r = api.post("/batch", json=body)
    assert r.status_code == status, r.text
    return r.json()["responses"] if status == 200 else r.json()


def test_defaults_deep_merge(api, records_url):
    defaults = {"method": "PUT", "headers": {"If-None-Match": "*"}, "body": {"data": {"shared": 1}}}
    out = batch(api, [{"path": f"{records_url}/a", "body": {"data": {"own": 2}}},
                      {"path": f"{records_url}/b", "body": {"data": {"shared": 3}}},
                      {"path": f"{records_url}/a"}], defaults)
    assert [o["status"] for o in out] == [201, 201, 412]
    assert out[0]["body"]["data"]["own"] == 2 and out[0]["body"]["data"]["shared"] == 1
    assert out[1]["body"]["data"]["shared"] == 3, "request values win over defaults"
    # The third one inherited If-None-Match: * from the defaults.
    assert out[2]["body"]["details"]["existing"]["id"] == "a"


def test_sub_response_shape(api, records_url):
    out = batch(api, [{"method": "PUT", "path": f"{records_url}/a?x=1", "body": {"data": {"n": 1}}},
                      {"method": "GET", "path": f"{records_url}?_sort=id"}])
    for o in out:
        assert set(o) == {"status", "path", "headers", "body"}
    put, get = out
    # The executed path: /v1 prefix, no querystring.
    assert put["path"] == f"/v1{records_url}/a"
    assert put["status"] == 201
    assert put["headers"]["ETag"] == f'"{put["body"]["data"]["last_modified"]}"'
    assert put["headers"]["Content-Type"].startswith("application/json")
    assert get["status"] == 200 and get["path"] == f"/v1{records_url}"
    assert [x["id"] for x in get["body"]["data"]] == ["a"]


def test_mixed_statuses(api, bob, records_url):
    bob_auth = "Basic " + base64.b64encode(f"bob:{PASSWORD}".encode()).decode()
    out = batch(api, [
        {"method": "POST", "path": records_url, "body": {"data": {"n": 1}}},
        {"method": "GET", "path": "/nope"},
        {"method": "DELETE", "path": f"/v1{records_url}/missing"},  # an explicit /v1 prefix is fine too
        {"method": "PUT", "path": f"{records_url}/bobs", "headers": {"Authorization": bob_auth}},
        {"method": "PUT", "path": f"{records_url}/c", "body": {"data": {"id": "other"}}},
        {"method": "GET", "path": "/"},
    ])
    assert [o["status"] for o in out] == [201, 404, 404, 403, 400, 200]
    assert out[1]["body"]["errno"] == 111
    assert out[2]["body"]["errno"] == 110
    assert out[3]["body"]["errno"] == 121
    assert out[4]["body"]["errno"] == 107
    # Sub-requests inherit the batch's Authorization unless they set their own.
    assert out[5]["body"]["user"]["id"] == api.principal


def test_anonymous_batch_sub_requests_get_401(anon, records_url):
    out = batch(anon, [{"method": "GET", "path": records_url}, {"method": "GET", "path": "/"}])
    assert out[0]["status"] == 401 and out[0]["body"]["errno"] == 104
    assert out[1]["status"] == 200 and "user" not in out[1]["body"]


def test_4xx_does_not_roll_back_the_others(api, bucket, records_url):
    out = batch(api, [
        {"method": "PUT", "path": f"{records_url}/a", "body": {"data": {}}},
        {"method": "PUT", "path": f"/buckets/{bucket}/collections/missing/records/x", "body": {"data": {}}},
        {"method": "PUT", "path": f"{records_url}/b", "body": {"data": {}}, "headers": {"If-Match": '"1"'}},
        {"method": "PUT", "path": f"{records_url}/c", "body": {"data": {}}},
    ])
    assert [o["status"] for o in out] == [201, 404, 412, 201]
    assert sorted(x["id"] for x in api.get(records_url).json()["data"]) == ["a", "c"]


def test_batch_writes_are_visible_and_ordered(api, records_url):
    out = batch(api, [{"method": "PUT", "path": f"{records_url}/r{i}", "body": {"data": {"i": i}}} for i in range(10)])
    stamps = [o["body"]["data"]["last_modified"] for o in out]
    assert stamps == sorted(stamps) and len(set(stamps)) == 10
    assert len(api.get(records_url).json()["data"]) == 10


def test_limit_25(api, records_url):
    ok = batch(api, [{"method": "GET", "path": "/"}] * 25)
    assert len(ok) == 25
    err = assert_error(api.post("/batch", json={"requests": [{"path": "/"}] * 26}), 400, 107)
    assert "Number of requests is limited to 25" in err["message"]


def test_empty_batch(api):
    assert batch(api, []) == []


def test_recursive_batch_400(api):
    err = assert_error(api.post("/batch", json={"requests": [{"method": "POST", "path": "/batch"}]}), 400, 107)
    assert "Recursive call on /batch endpoint is forbidden." in err["message"]


@pytest.mark.parametrize("body", [
    {},
    {"requests": "nope"},
    {"requests": [], "extra": 1},
    {"requests": [{"path": "/", "extra": 1}]},
    {"requests": [{"method": "GET"}]},
    {"requests": [{"path": "no-slash"}]},
    {"requests": [{"path": "/", "method": "OPTIONS"}]},
    {"requests": [{"path": "/", "headers": {"a": 1}}]},
    {"requests": [{"path": "/", "method": "PUT", "body": [1]}]},
])
def test_invalid_envelope_400(api, body):
    assert_error(api.post("/batch", json=body), 400, 107)


def test_batch_needs_json(api):
    assert_error(api.post("/batch", data="requests", headers={"Content-Type": "text/plain"}), 415, 107)


# kinto-rs sends the consecutive bucket operations of a batch to each shard in one call; these pin down that every
# sub-request still sees exactly the writes of the sub-requests before it, whatever shard or route they took.

def slot_owner(bid, shards=2):
    """The shard of a bucket in the `split` target (kinto_placement: SHA-256 → slot → contiguous ranges)."""
    digest = hashlib.sha256(bid.encode()).digest()
    return ((int.from_bytes(digest[:2], "big") % 4096) * shards) // 4096


def buckets_on_two_shards(api):
    """Two fresh buckets that the split target places on different shards (any two buckets on the others)."""
    first = uid("b")
    second = next(b for b in (uid("b") for _ in range(200)) if slot_owner(b) != slot_owner(first))
    for bid in (first, second):
        api.create_bucket(bid)
        api.create_collection(bid, "c")
    return first, second


def test_batch_across_two_shards_keeps_each_sub_request_in_order(api):
    a, b = buckets_on_two_shards(api)
    ra, rb = f"/buckets/{a}/collections/c/records", f"/buckets/{b}/collections/c/records"
    out = batch(api, [
        {"method": "PUT", "path": f"{ra}/x", "body": {"data": {"n": 1}}},
        {"method": "PUT", "path": f"{rb}/x", "body": {"data": {"n": 2}}},
        {"method": "PUT", "path": f"{ra}/x", "body": {"data": {"n": 3}}, "headers": {"If-None-Match": "*"}},
        {"method": "PATCH", "path": f"{rb}/x", "body": {"data": {"m": 4}}},
        {"method": "GET", "path": f"{ra}/x"},
        {"method": "GET", "path": f"{rb}/x"},
        {"method": "DELETE", "path": f"{ra}/x"},
        {"method": "GET", "path": ra},
        {"method": "PUT", "path": f"/buckets/{b}/collections/missing/records/x", "body": {"data": {}}},
        {"method": "PUT", "path": f"{rb}/y", "body": {"data": {}}},
    ])
    assert [o["status"] for o in out] == [201, 201, 412, 200, 200, 200, 200, 200, 404, 201]
    assert out[2]["body"]["details"]["existing"]["n"] == 1, "the 412 saw the write just before it"
    assert out[4]["body"]["data"]["n"] == 1
    assert out[5]["body"]["data"] == {**out[3]["body"]["data"], "n": 2, "m": 4}
    assert out[6]["body"]["data"]["deleted"] is True
    assert out[7]["body"]["data"] == [], "the list saw the deletion"
    assert out[8]["body"]["errno"] == 111
    assert sorted(r["id"] for r in api.get(rb).json()["data"]) == ["x", "y"]
    assert api.get(ra).json()["data"] == []


def test_if_match_inside_a_batch(api, collection, records_url):
    rec = api.create_record(*collection, data={"v": 0}, rid="r")
    ts = rec["last_modified"]
    out = batch(api, [
        {"method": "PUT", "path": f"{records_url}/r", "body": {"data": {"v": 1}}, "headers": {"If-Match": f'"{ts}"'}},
        # The same precondition again: the record changed in the sub-request before.
        {"method": "PUT", "path": f"{records_url}/r", "body": {"data": {"v": 2}}, "headers": {"If-Match": f'"{ts}"'}},
        {"method": "PUT", "path": f"{records_url}/new", "body": {"data": {}}, "headers": {"If-Match": f'"{ts}"'}},
        {"method": "DELETE", "path": f"{records_url}/r", "headers": {"If-Match": '"1"'}},
        {"method": "PUT", "path": f"{records_url}/r", "body": {"data": {"v": 3}}, "headers": {"If-Match": "bad"}},
    ])
    assert [o["status"] for o in out] == [200, 412, 412, 412, 400]
    new_ts = out[0]["body"]["data"]["last_modified"]
    assert out[1]["body"]["details"]["existing"]["last_modified"] == new_ts
    assert out[1]["headers"]["ETag"] == f'"{new_ts}"'
    assert out[3]["body"]["details"]["existing"]["v"] == 1
    assert api.get(f"{records_url}/r").json()["data"]["v"] == 1


def test_permissions_changed_and_denied_mid_batch(api, bob, bucket, records_url):
    bob_auth = "Basic " + base64.b64encode(f"bob:{PASSWORD}".encode()).decode()
    coll = records_url.rsplit("/records", 1)[0]
    as_bob = {"Authorization": bob_auth}
    out = batch(api, [
        {"method": "PUT", "path": f"{records_url}/b1", "body": {"data": {}}, "headers": as_bob},
        {"method": "PATCH", "path": coll, "body": {"permissions": {"record:create": [bob.principal]}}},
        {"method": "PUT", "path": f"{records_url}/b2", "body": {"data": {}}, "headers": as_bob},
        {"method": "PUT", "path": f"{records_url}/a1", "body": {"data": {}}},
        {"method": "PATCH", "path": coll, "body": {"permissions": {"record:create": []}}},
        {"method": "PUT", "path": f"{records_url}/b3", "body": {"data": {}}, "headers": as_bob},
        # bob still writes the record he created.
        {"method": "PATCH", "path": f"{records_url}/b2", "body": {"data": {"x": 1}}, "headers": as_bob},
        {"method": "GET", "path": f"/buckets/{bucket}", "headers": as_bob},
    ])
    assert [o["status"] for o in out] == [403, 200, 201, 201, 200, 403, 200, 403]
    assert sorted(r["id"] for r in api.get(records_url).json()["data"]) == ["a1", "b2"]


def test_other_endpoints_see_the_writes_before_them(api):
    bid = uid("b")
    out = batch(api, [
        {"method": "PUT", "path": f"/buckets/{bid}"},
        {"method": "GET", "path": f"/buckets?id={bid}"},
        {"method": "PUT", "path": f"/buckets/{bid}/collections/c"},
        {"method": "GET", "path": "/"},
        {"method": "GET", "path": f"/buckets/{bid}/collections/c/"},  # redirected to the path without '/'
        {"method": "DELETE", "path": f"/buckets?id={bid}"},
        {"method": "GET", "path": f"/buckets?id={bid}"},
    ])
    assert [o["status"] for o in out] == [201, 200, 201, 200, 200, 200, 200]
    assert [b["id"] for b in out[1]["body"]["data"]] == [bid]
    assert out[4]["path"] == f"/v1/buckets/{bid}/collections/c"
    assert out[4]["body"]["data"]["id"] == "c"
    assert [b["id"] for b in out[5]["body"]["data"]] == [bid]
    assert out[6]["body"]["data"] == []


def test_account_created_mid_batch_authenticates_the_next_sub_requests(plugged):
    alice = Api(plugged, "alice")
    bid = alice.create_bucket(permissions={"read": ["system.Authenticated"]})
    alice.create_collection(bid, "c", permissions={"record:create": ["system.Authenticated"]})
    records = f"/buckets/{bid}/collections/c/records"
    name = uid("u")
    as_name = {"Authorization": "Basic " + base64.b64encode(f"{name}:pw".encode()).decode()}
    out = Api(plugged).post("/batch", json={"requests": [
        # No account yet: the same credentials are a basicauth user.
        {"method": "PUT", "path": f"{records}/r1", "body": {"data": {}}, "headers": as_name},
        {"method": "PUT", "path": f"/accounts/{name}", "body": {"data": {"password": "pw"}}},
        {"method": "PUT", "path": f"{records}/r2", "body": {"data": {}}, "headers": as_name},
        {"method": "GET", "path": "/", "headers": as_name},
    ]}).json()["responses"]
    assert [o["status"] for o in out] == [201, 201, 201, 200]
    assert out[0]["body"]["permissions"]["write"] == [user_id(name, "pw")]
    assert out[2]["body"]["permissions"]["write"] == [f"account:{name}"]
    assert out[3]["body"]["user"]["id"] == f"account:{name}"
