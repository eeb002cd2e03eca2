"""The history plugin (kinto-api.md §10.3): one entry per change, under its bucket, readable as the object was."""

import pytest

from api import Api, assert_error, uid, user_id


@pytest.fixture
def hist(plugged):
    """A bucket with a public collection `c` (r1 shared with bob), a private one `priv`, and a group."""
    alice = Api(plugged, "alice")
    bid = alice.create_bucket()
    alice.ok("PUT", f"/buckets/{bid}/collections/c", json={"permissions": {"read": ["system.Everyone"]}})
    alice.ok("PUT", f"/buckets/{bid}/collections/c/records/r1",
             json={"data": {"a": 1}, "permissions": {"read": [user_id("bob")]}})
    alice.ok("PATCH", f"/buckets/{bid}/collections/c/records/r1", json={"data": {"a": 2}})
    alice.ok("PUT", f"/buckets/{bid}/collections/priv")
    alice.ok("PUT", f"/buckets/{bid}/collections/priv/records/p1", json={"data": {"secret": True}})
    alice.ok("PUT", f"/buckets/{bid}/groups/g", json={"data": {"members": ["x"]}})
    alice.ok("DELETE", f"/buckets/{bid}/collections/c/records/r1")
    return alice, bid


def entries(api, url):
    r = api.get(url)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_every_change_has_an_entry(hist):
    alice, bid = hist
    data = entries(alice, f"/buckets/{bid}/history")
    summary = [(e["action"], e["resource_name"], e["uri"]) for e in data]
    assert summary == [
        ("delete", "record", f"/buckets/{bid}/collections/c/records/r1"),
        ("create", "group", f"/buckets/{bid}/groups/g"),
        ("create", "record", f"/buckets/{bid}/collections/priv/records/p1"),
        ("create", "collection", f"/buckets/{bid}/collections/priv"),
        ("update", "record", f"/buckets/{bid}/collections/c/records/r1"),
        ("create", "record", f"/buckets/{bid}/collections/c/records/r1"),
        ("create", "collection", f"/buckets/{bid}/collections/c"),
        ("create", "bucket", f"/buckets/{bid}"),
    ]
    update = data[4]
    assert update["user_id"] == user_id("alice")
    assert update["collection_id"] == "c" and update["record_id"] == "r1"
    assert update["target"]["data"]["a"] == 2
    assert update["target"]["permissions"]["read"] == [user_id("bob")]
    assert data[0]["target"] == {"data": {"id": "r1", "last_modified": data[0]["target"]["data"]["last_modified"],
                                          "deleted": True}, "permissions": {}}
    assert data[-1]["bucket_id"] == bid and data[-1]["date"].endswith("+00:00")
    stamps = [e["last_modified"] for e in data]
    assert stamps == sorted(stamps, reverse=True) and len(set(stamps)) == len(stamps)


def test_entries_visible_as_their_objects(hist, plugged):
    _, bid = hist
    # Collection `c` is public: its entries are readable by anyone; `priv` and the group are not.
    for reader in (Api(plugged, "bob"), Api(plugged)):
        uris = {e["uri"] for e in entries(reader, f"/buckets/{bid}/history")}
        assert f"/buckets/{bid}/collections/c/records/r1" in uris
        assert not any("priv" in u or "groups" in u for u in uris)


def test_filters_paging_and_unknown_fields(hist):
    alice, bid = hist
    recs = entries(alice, f"/buckets/{bid}/history?resource_name=record&collection_id=c")
    assert [e["action"] for e in recs] == ["delete", "update", "create"]
    r = alice.get(f"/buckets/{bid}/history?_limit=2")
    assert len(r.json()["data"]) == 2 and "Next-Page" in r.headers
    since = recs[1]["last_modified"]
    assert [e["action"] for e in entries(alice, f"/buckets/{bid}/history?_since={since}")] == ["delete", "create",
                                                                                              "create", "create"]
    err = assert_error(alice.get(f"/buckets/{bid}/history?foo=1"), 400, 107)
    assert err["details"][0]["name"] == "foo"


def test_purge_needs_bucket_write(hist, plugged):
    alice, bid = hist
    assert_error(Api(plugged, "bob").delete(f"/buckets/{bid}/history"), 403, 121)
    purged = alice.ok("DELETE", f"/buckets/{bid}/history").json()["data"]
    assert len(purged) == 8
    assert entries(alice, f"/buckets/{bid}/history") == []


def test_history_of_unreadable_bucket(plugged):
    alice = Api(plugged, "alice")
    bid = alice.create_bucket()
    assert_error(Api(plugged, "bob").get(f"/buckets/{bid}/history"), 403, 121)
    assert_error(Api(plugged).get(f"/buckets/{bid}/history"), 401, 104)
    assert_error(alice.get(f"/buckets/{uid('missing')}/history"), 403, 121)
    assert_error(alice.post(f"/buckets/{bid}/history", json={}), 405, 115)


def test_deleting_the_bucket_drops_its_history(plugged):
    alice = Api(plugged, "alice")
    bid = alice.create_bucket()
    alice.ok("PUT", f"/buckets/{bid}/collections/c")
    alice.ok("DELETE", f"/buckets/{bid}")
    alice.create_bucket(bid)
    assert [e["action"] for e in entries(alice, f"/buckets/{bid}/history")] == ["create"]


def test_no_history_without_plugin(api, bucket):
    assert_error(api.get(f"/buckets/{bucket}/history"), 404, 111)


def test_snapshot_rebuilds_the_collection(plugged):
    alice = Api(plugged, "alice")
    bid = alice.create_bucket()
    alice.ok("PUT", f"/buckets/{bid}/collections/c")
    url = f"/buckets/{bid}/collections/c/records"
    a1 = alice.ok("PUT", f"{url}/a", json={"data": {"v": 1}}).json()["data"]
    b1 = alice.ok("PUT", f"{url}/b", json={"data": {"v": 1}}).json()["data"]
    t = b1["last_modified"]
    alice.ok("PATCH", f"{url}/a", json={"data": {"v": 2}})
    alice.ok("DELETE", f"{url}/b")
    alice.ok("PUT", f"{url}/c", json={"data": {"v": 1}})
    snap = alice.get(f"/buckets/{bid}/snapshot/collections/c@{t}")
    assert snap.status_code == 200, snap.text
    assert snap.json()["data"] == [b1, a1]
    now = alice.get(url).json()["data"]
    assert alice.get(f"/buckets/{bid}/snapshot/collections/c@{now[0]['last_modified']}").json()["data"] == now
    assert_error(alice.get(f"/buckets/{bid}/snapshot/collections/c@abc"), 400, 107)
    assert_error(Api(plugged, "bob").get(f"/buckets/{bid}/snapshot/collections/c@{t}"), 403, 121)
