"""The three PATCH flavours (kinto-api.md §6.3)."""

import json

import pytest

from api import assert_error

MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


@pytest.fixture
def record(api, records_url):
    url = f"{records_url}/r1"
    api.ok("PUT", url, json={"data": {"a": 1, "o": {"x": 1, "y": 2}, "l": [1, 2]},
                             "permissions": {"read": ["u1", "u2"]}})
    return url


def perms(r):
    return {k: sorted(v) for k, v in r.json()["permissions"].items()}


def test_default_patch_is_a_shallow_merge(api, record):
    before = api.get(record).json()["data"]
    r = api.patch(record, json={"data": {"o": {"x": 9}, "a": None, "n": 1}})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["o"] == {"x": 9}, "nested objects are replaced wholesale"
    assert data["a"] is None, "null is stored, not a deletion"
    assert data["n"] == 1 and data["l"] == [1, 2]
    assert data["last_modified"] > before["last_modified"]
    assert api.get(record).json()["data"] == data


def test_default_patch_permissions_replace_listed_only(api, record):
    r = api.patch(record, json={"permissions": {"write": ["u3"]}})
    assert r.status_code == 200
    # `read` untouched; `write` replaced, then the caller re-added.
    assert perms(r) == {"read": ["u1", "u2"], "write": sorted(["u3", api.principal])}


def test_merge_patch_is_recursive_and_null_removes(api, record):
    body = {"data": {"o": {"y": None, "z": 3}, "a": None}, "permissions": {"read": None}}
    r = api.patch(record, data=json.dumps(body), headers=MERGE)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["o"] == {"x": 1, "z": 3}
    assert "a" not in data
    assert data["l"] == [1, 2]
    assert "read" not in r.json()["permissions"]
    assert api.get(record).json()["data"] == data


def test_json_patch_on_data_and_permissions(api, bob, record):
    ops = [
        {"op": "add", "path": "/data/o/w", "value": 5},
        {"op": "remove", "path": "/data/a"},
        {"op": "replace", "path": "/data/l", "value": [3]},
        {"op": "add", "path": f"/permissions/read/{bob.principal}"},
        {"op": "remove", "path": "/permissions/read/u1"},
    ]
    assert bob.get(record).status_code == 403
    r = api.patch(record, data=json.dumps(ops), headers=JSON_PATCH)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["o"] == {"x": 1, "y": 2, "w": 5}
    assert "a" not in data and data["l"] == [3]
    assert perms(r)["read"] == sorted(["u2", bob.principal])
    # The ACL change is effective, not only echoed.
    assert bob.get(record).status_code == 200


def test_json_patch_add_everyone(api, anon, record):
    assert anon.get(record).status_code == 401
    ops = [{"op": "add", "path": "/permissions/read/system.Everyone"}]
    api.ok("PATCH", record, data=json.dumps(ops), headers=JSON_PATCH)
    assert anon.get(record).status_code == 200


@pytest.mark.parametrize("ops", [
    [{"op": "test", "path": "/data/a", "value": 2}],
    [{"op": "remove", "path": "/data/nope"}],
    [{"op": "frobnicate", "path": "/data/a"}],
    {"op": "add", "path": "/data/a", "value": 1},
])
def test_json_patch_failures_400(api, record, ops):
    before = api.get(record).json()["data"]
    assert_error(api.patch(record, data=json.dumps(ops), headers=JSON_PATCH), 400, 107)
    assert api.get(record).json()["data"] == before, "a failed patch changes nothing"


def test_json_patch_test_op_passes(api, record):
    ops = [{"op": "test", "path": "/data/a", "value": 1}, {"op": "add", "path": "/data/b", "value": 2}]
    r = api.patch(record, data=json.dumps(ops), headers=JSON_PATCH)
    assert r.status_code == 200
    assert r.json()["data"]["b"] == 2


@pytest.mark.parametrize("body", [None, {}])
def test_empty_patch_400(api, record, body):
    err = assert_error(api.patch(record, json=body), 400, 107)
    assert "Provide at least one of data or permissions" in err["message"]


def test_empty_data_patch_bumps_timestamp(api, record):
    before = api.get(record).json()["data"]
    r = api.patch(record, json={"data": {}})
    assert r.status_code == 200
    after = r.json()["data"]
    assert after["last_modified"] > before["last_modified"]
    assert {k: v for k, v in after.items() if k != "last_modified"} == \
        {k: v for k, v in before.items() if k != "last_modified"}


def test_patch_cannot_change_id(api, record):
    assert_error(api.patch(record, json={"data": {"id": "other"}}), 400, 107)


def test_patch_unsupported_content_type_415(api, record):
    assert_error(api.patch(record, data="{}", headers={"Content-Type": "text/plain"}), 415, 107)


def test_patch_bucket_and_collection(api, collection):
    bid, cid = collection
    r = api.patch(f"/buckets/{bid}", json={"data": {"title": "B"}})
    assert r.status_code == 200 and r.json()["data"]["title"] == "B"
    r = api.patch(f"/buckets/{bid}/collections/{cid}", data=json.dumps({"data": {"t": {"a": 1}}}), headers=MERGE)
    assert r.status_code == 200 and r.json()["data"]["t"] == {"a": 1}
