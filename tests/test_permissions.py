"""ACLs, inheritance, principals and the 401/403/404 rules (kinto-api.md §3)."""

import pytest

from api import assert_error


@pytest.fixture
def setup(api, collection):
    """alice's bucket/collection with records r1, r2; returns the useful URLs."""
    bid, cid = collection
    base = f"/buckets/{bid}/collections/{cid}"
    for rid in ("r1", "r2"):
        api.ok("PUT", f"{base}/records/{rid}", json={"data": {"n": rid}})
    return {"bucket": f"/buckets/{bid}", "collection": base, "records": f"{base}/records", "bid": bid}


def grant(api, url, perm, principals):
    api.ok("PATCH", url, json={"permissions": {perm: principals}})


def test_anonymous_gets_401_with_challenge(anon, setup):
    for method, url in [("GET", setup["records"] + "/r1"), ("GET", setup["records"]), ("PUT", setup["records"] + "/x"),
                        ("DELETE", setup["records"] + "/r1"), ("GET", setup["bucket"])]:
        r = anon.request(method, url, json={"data": {}} if method == "PUT" else None)
        err = assert_error(r, 401, 104)
        assert err["message"] == "Please authenticate yourself to use this endpoint."
        assert r.headers["WWW-Authenticate"].startswith("Basic realm=")


def test_authenticated_stranger_gets_403(bob, setup):
    for method, url in [("GET", setup["records"] + "/r1"), ("GET", setup["records"]), ("PUT", setup["records"] + "/x"),
                        ("PATCH", setup["records"] + "/r1"), ("DELETE", setup["records"] + "/r1"),
                        ("GET", setup["collection"]), ("GET", setup["bucket"])]:
        r = bob.request(method, url, json={"data": {}} if method in ("PUT", "PATCH") else None)
        err = assert_error(r, 403, 121)
        assert err["message"] == "This user cannot access this resource."


def test_missing_object_hidden_without_parent_read(bob, anon, setup):
    # Existence is not leaked: no read on the collection -> 403/401, never 404.
    missing = setup["records"] + "/missing"
    for method in ("GET", "PATCH", "DELETE"):
        body = {"data": {}} if method == "PATCH" else None
        assert_error(bob.request(method, missing, json=body), 403, 121)
        assert_error(anon.request(method, missing, json=body), 401, 104)


def test_missing_object_404_with_parent_read(api, bob, setup):
    grant(api, setup["collection"], "read", [bob.principal])
    missing = setup["records"] + "/missing"
    for method in ("GET", "PATCH", "DELETE"):
        body = {"data": {}} if method == "PATCH" else None
        err = assert_error(bob.request(method, missing, json=body), 404, 110)
        assert err["details"] == {"id": "missing", "resource_name": "record"}
    # ... but reading is not creating.
    assert_error(bob.put(missing, json={"data": {}}), 403, 121)


def test_record_read_permission(api, bob, setup):
    grant(api, setup["records"] + "/r1", "read", [bob.principal])
    r = bob.get(setup["records"] + "/r1")
    assert r.status_code == 200
    assert r.json()["permissions"] == {}, "permissions are only shown to explicit writers"
    assert api.get(setup["records"] + "/r1").json()["permissions"]["read"] == [bob.principal]
    assert_error(bob.get(setup["records"] + "/r2"), 403, 121)
    assert_error(bob.put(setup["records"] + "/r1", json={"data": {}}), 403, 121)
    # The listing is filtered to what bob may read, and so is the count.
    assert [x["id"] for x in bob.get(setup["records"]).json()["data"]] == ["r1"]
    assert bob.head(setup["records"]).headers["Total-Objects"] == "1"


def test_record_write_permission(api, bob, setup):
    grant(api, setup["records"] + "/r1", "write", [bob.principal])
    r = bob.put(setup["records"] + "/r1", json={"data": {"by": "bob"}})
    assert r.status_code == 200
    # Explicit writers see the ACL.
    assert bob.principal in r.json()["permissions"]["write"]
    assert bob.get(setup["records"] + "/r1").status_code == 200, "write implies read"
    assert bob.delete(setup["records"] + "/r1").status_code == 200
    assert_error(bob.delete(setup["records"] + "/r2"), 403, 121)


def test_collection_read_inherited_by_records(api, bob, setup):
    grant(api, setup["collection"], "read", [bob.principal])
    assert bob.get(setup["records"] + "/r1").status_code == 200
    assert sorted(x["id"] for x in bob.get(setup["records"]).json()["data"]) == ["r1", "r2"]
    assert_error(bob.put(setup["records"] + "/r1", json={"data": {}}), 403, 121)
    assert_error(bob.post(setup["records"], json={"data": {}}), 403, 121)


def test_record_create_permission(api, bob, setup):
    grant(api, setup["collection"], "record:create", [bob.principal])
    r = bob.post(setup["records"], json={"data": {"mine": True}})
    assert r.status_code == 201
    mine = r.json()["data"]["id"]
    assert r.json()["permissions"]["write"] == [bob.principal]
    assert bob.put(setup["records"] + "/bobs", json={"data": {}}).status_code == 201
    # He lists only what he created; he cannot touch alice's records.
    assert sorted(x["id"] for x in bob.get(setup["records"]).json()["data"]) == sorted([mine, "bobs"])
    assert_error(bob.get(setup["records"] + "/r1"), 403, 121)
    assert_error(bob.put(setup["records"] + "/r1", json={"data": {}}), 403, 121)
    # *:create lets him read the collection's attributes.
    assert bob.get(setup["collection"]).status_code == 200


def test_bucket_write_inherited_everywhere(api, bob, setup):
    grant(api, setup["bucket"], "write", [bob.principal])
    assert bob.get(setup["records"] + "/r1").status_code == 200
    assert bob.put(setup["records"] + "/r2", json={"data": {"by": "bob"}}).status_code == 200
    assert bob.put(setup["bucket"] + "/collections/bobs", json={}).status_code == 201
    assert bob.delete(setup["records"] + "/r1").status_code == 200
    assert bob.get(setup["bucket"]).status_code == 200


def test_bucket_read_inherited(api, bob, setup):
    grant(api, setup["bucket"], "read", [bob.principal])
    assert bob.get(setup["collection"]).status_code == 200
    assert bob.get(setup["records"] + "/r1").status_code == 200
    assert [c["id"] for c in bob.get(setup["bucket"] + "/collections").json()["data"]] == [setup["collection"].split("/")[-1]]
    assert_error(bob.put(setup["records"] + "/r1", json={"data": {}}), 403, 121)
    # Reading the bucket means 404 (not 403) for missing children.
    assert_error(bob.get(setup["bucket"] + "/collections/nope"), 404, 110)


def test_system_everyone(api, anon, bob, setup):
    grant(api, setup["collection"], "read", ["system.Everyone"])
    assert anon.get(setup["records"] + "/r1").status_code == 200
    assert bob.get(setup["records"] + "/r1").status_code == 200
    assert_error(anon.put(setup["records"] + "/r1", json={"data": {}}), 401, 104)


def test_system_authenticated(api, anon, bob, setup):
    grant(api, setup["collection"], "read", ["system.Authenticated"])
    assert bob.get(setup["records"] + "/r1").status_code == 200
    assert_error(anon.get(setup["records"] + "/r1"), 401, 104)


def test_group_principal(api, bob, setup):
    group = setup["bucket"] + "/groups/readers"
    api.ok("PUT", group, json={"data": {"members": [bob.principal]}})
    grant(api, setup["collection"], "write", [group])
    assert bob.put(setup["records"] + "/r1", json={"data": {"via": "group"}}).status_code == 200
    assert bob.get(setup["records"] + "/r2").status_code == 200
    # Removing bob from the group revokes the access (r1 he now owns: writing it made him a writer).
    api.ok("PUT", group, json={"data": {"members": []}})
    assert_error(bob.get(setup["records"] + "/r2"), 403, 121)
    assert bob.get(setup["records"] + "/r1").status_code == 200


def test_user_principal_on_bucket_listing(api, bob, setup):
    # /buckets lists only the buckets the caller may read.
    assert setup["bid"] not in [b["id"] for b in bob.get("/buckets").json()["data"]]
    grant(api, setup["bucket"], "read", [bob.principal])
    assert setup["bid"] in [b["id"] for b in bob.get("/buckets").json()["data"]]
    assert setup["bid"] in [b["id"] for b in api.get("/buckets").json()["data"]]


def test_permissions_replace_on_put(api, bob, setup):
    url = setup["records"] + "/r1"
    api.ok("PUT", url, json={"data": {}, "permissions": {"read": [bob.principal], "write": ["u9"]}})
    r = api.put(url, json={"permissions": {"write": ["u8"]}})
    # PUT replaces the whole ACL (read emptied) and re-adds the caller to write.
    assert "read" not in r.json()["permissions"] or r.json()["permissions"]["read"] == []
    assert sorted(r.json()["permissions"]["write"]) == sorted(["u8", api.principal])
    assert_error(bob.get(url), 403, 121)


@pytest.mark.parametrize("perms", [{"delete": ["x"]}, {"read": "x"}, {"read": [1]}, ["read"]])
def test_invalid_permissions_400(api, setup, perms):
    assert_error(api.put(setup["records"] + "/r9", json={"data": {}, "permissions": perms}), 400, 107)


def test_bucket_create_needs_authentication(anon, bob, new_id):
    assert_error(anon.put(f"/buckets/{new_id('b')}"), 401, 104)
    assert bob.put(f"/buckets/{new_id('b')}").status_code == 201
