"""JSON-schema validation (kinto-api.md §6.6), on with `experimental_collection_schema_validation`."""

import pytest

from api import Api, assert_error

SCHEMA = {"type": "object", "required": ["title"],
          "properties": {"title": {"type": "string"}, "n": {"type": "integer"}}}


@pytest.fixture
def alice(plugged):
    return Api(plugged, "alice")


def test_collection_schema_validates_records(alice):
    bid = alice.create_bucket()
    cid = alice.create_collection(bid, data={"schema": SCHEMA})
    version = alice.get(f"/buckets/{bid}/collections/{cid}").json()["data"]["last_modified"]
    url = f"/buckets/{bid}/collections/{cid}/records"
    err = assert_error(alice.put(f"{url}/r1", json={"data": {"n": 1}}), 400, 107)
    assert err["details"] == [{"location": "body", "name": "title", "description": err["details"][0]["description"]}]
    assert "title" in err["details"][0]["description"]
    err = assert_error(alice.put(f"{url}/r1", json={"data": {"title": 5}}), 400, 107)
    assert err["details"][0]["name"] == "title"
    rec = alice.ok("PUT", f"{url}/r1", json={"data": {"title": "ok"}}).json()["data"]
    assert rec["schema"] == version, "valid records carry the schema version"
    # PATCH validates the merged record.
    assert_error(alice.patch(f"{url}/r1", json={"data": {"n": "x"}}), 400, 107)
    assert alice.patch(f"{url}/r1", json={"data": {"n": 3}}).status_code == 200
    assert alice.get(f"{url}/r1").json()["data"]["n"] == 3


def test_invalid_schema_is_refused(alice):
    bid = alice.create_bucket()
    for bad in ({"type": "nope"}, 3):
        err = assert_error(alice.put(f"/buckets/{bid}/collections/bad", json={"data": {"schema": bad}}), 400, 107)
        assert err["details"][0]["name"] == "data.schema"
    err = assert_error(alice.put(f"/buckets/{bid}", json={"data": {"record:schema": {"type": 1}}}), 400, 107)
    assert err["details"][0]["name"] == "data.record:schema"
    assert alice.get(f"/buckets/{bid}/collections/bad").status_code == 404


def test_bucket_schemas(alice):
    bid = alice.create_bucket(data={"collection:schema": {"type": "object", "required": ["label"]},
                                    "record:schema": {"type": "object", "required": ["k"]},
                                    "group:schema": {"type": "object", "required": ["members", "title"]}})
    err = assert_error(alice.put(f"/buckets/{bid}/collections/x", json={"data": {}}), 400, 107)
    assert err["details"][0]["name"] == "label"
    alice.ok("PUT", f"/buckets/{bid}/collections/x", json={"data": {"label": "L"}})
    assert_error(alice.put(f"/buckets/{bid}/collections/x/records/r", json={"data": {}}), 400, 107)
    alice.ok("PUT", f"/buckets/{bid}/collections/x/records/r", json={"data": {"k": 1}})
    assert_error(alice.put(f"/buckets/{bid}/groups/g", json={"data": {"members": []}}), 400, 107)
    alice.ok("PUT", f"/buckets/{bid}/groups/g", json={"data": {"members": [], "title": "t"}})


def test_validation_off_by_default(api):
    # Without the setting, records are not validated (the schema itself still must be one).
    bid = api.create_bucket()
    cid = api.create_collection(bid, data={"schema": SCHEMA})
    r = api.put(f"/buckets/{bid}/collections/{cid}/records/r1", json={"data": {"n": "x"}})
    assert r.status_code == 201 and "schema" not in r.json()["data"]
