"""`GET /permissions` and `DELETE /__user_data__/{principal}` (kinto-api.md §3.6, issue 3)."""

import pytest

from api import Api, assert_error, uid, user_id


def entries(api, query=""):
    r = api.get(f"/permissions{query}")
    assert r.status_code == 200, r.text
    return {e["uri"]: e for e in r.json()["data"]}


@pytest.fixture
def shared(plugged):
    alice, bob = Api(plugged, "alice"), Api(plugged, "bob")
    bid = alice.create_bucket()
    alice.ok("PUT", f"/buckets/{bid}/collections/c", json={"permissions": {"read": [user_id("bob")]}})
    alice.ok("PUT", f"/buckets/{bid}/collections/c/records/r1", json={"permissions": {"write": [user_id("bob")]}})
    alice.ok("PUT", f"/buckets/{bid}/groups/g", json={"data": {"members": [user_id("bob")]}})
    alice.ok("PUT", f"/buckets/{bid}/collections/d",
             json={"permissions": {"read": [f"/buckets/{bid}/groups/g"], "record:create": ["system.Authenticated"]}})
    return alice, bob, bid


def test_entries_per_object_expanded_within_it(shared):
    alice, bob, bid = shared
    mine = entries(alice)
    assert set(mine[f"/buckets/{bid}"]["permissions"]) == {"write", "read", "read:attributes", "collection:create",
                                                           "group:create"}
    assert set(mine[f"/buckets/{bid}/collections/c"]["permissions"]) == {"write", "read", "read:attributes",
                                                                         "record:create"}
    assert mine["/"]["resource_name"] == "root"
    assert set(mine["/"]["permissions"]) == {"account:create", "bucket:create"}, "a set: Kinto's order varies"
    theirs = entries(bob)
    c = theirs[f"/buckets/{bid}/collections/c"]
    assert set(c["permissions"]) == {"read", "read:attributes"}
    assert (c["bucket_id"], c["collection_id"], c["id"], c["resource_name"]) == (bid, "c", "c", "collection")
    r1 = theirs[f"/buckets/{bid}/collections/c/records/r1"]
    assert set(r1["permissions"]) == {"read", "write"} and r1["record_id"] == "r1"
    # Through group membership, and system.Authenticated.
    assert set(theirs[f"/buckets/{bid}/collections/d"]["permissions"]) == {"read", "read:attributes", "record:create"}
    assert f"/buckets/{bid}" not in theirs, "children's permissions do not leak up"
    anon = entries(Api(bob.server))  # the server is shared: other tests' public objects may be listed
    assert anon["/"] == {"uri": "/", "resource_name": "root", "permissions": ["account:create"]}
    assert not any(uri.startswith(f"/buckets/{bid}") for uri in anon)


def test_filters_sort_and_pages(shared):
    _, bob, bid = shared
    recs = entries(bob, f"?resource_name=record&bucket_id={bid}")
    assert list(recs) == [f"/buckets/{bid}/collections/c/records/r1"]
    r = bob.get(f"/permissions?bucket_id={bid}&_sort=uri&_limit=2")
    first = [e["uri"] for e in r.json()["data"]]
    assert first == [f"/buckets/{bid}/collections/c", f"/buckets/{bid}/collections/c/records/r1"]
    rest = bob.get(r.headers["Next-Page"]).json()["data"]
    assert [e["uri"] for e in rest] == [f"/buckets/{bid}/collections/d"]
    assert bob.head(f"/permissions?bucket_id={bid}").headers["Total-Objects"] == "3"
    err = assert_error(bob.get("/permissions?foo=1"), 400, 107)
    assert err["details"][0]["name"] == "foo"


def test_permissions_endpoint_off_in_core(api):
    assert_error(api.get("/permissions"), 404, 111)


def test_user_data_needs_its_setting(shared):
    _, bob, _ = shared
    assert_error(bob.delete(f"/__user_data__/{user_id('bob')}"), 403, 121)
    assert_error(Api(bob.server).delete(f"/__user_data__/{user_id('bob')}"), 401, 104)


@pytest.mark.targets("single", "split")
def test_user_data_deletion(pool, target):
    # ours only: the reference's setting name (`user-data_delete_principals`) cannot be an environment variable,
    # and this profile is not shared with the other tests.
    server = pool.get(target, "gdpr")
    alice, carol, admin = Api(server, "alice"), Api(server, uid("carol")), Api(server, "gdpr-admin")
    mine = carol.create_bucket()
    carol.ok("PUT", f"/buckets/{mine}/collections/c/records/r", json={"data": {}}, status=(201, 404))
    shared = alice.create_bucket()
    alice.ok("PUT", f"/buckets/{shared}/collections/c", json={"permissions": {"write": [carol.principal]}})
    alice.ok("PUT", f"/buckets/{shared}/groups/g", json={"data": {"members": [carol.principal, "x"]}})
    r = admin.ok("DELETE", f"/__user_data__/{carol.principal}")
    assert r.json() == {"data": {"principal": carol.principal}}
    assert alice.get(f"/buckets/{mine}").status_code == 403
    assert carol.get(f"/buckets/{mine}").status_code == 403, "carol's own bucket is gone"
    assert alice.get(f"/buckets/{shared}/collections/c").json()["permissions"]["write"] == [alice.principal]
    assert alice.get(f"/buckets/{shared}/groups/g").json()["data"]["members"] == ["x"]
    assert carol.get(f"/buckets/{shared}/collections/c").status_code == 403
