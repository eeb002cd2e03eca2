"""The default bucket plugin (kinto-api.md §2.6, §2.7, §10.4): `/buckets/default` is the caller's personal bucket."""

import hashlib
import hmac
import uuid

from api import Api, assert_error, uid, user_id


def personal_bucket(user, secret=""):
    """Kinto's formula: uuid(hex(HMAC-SHA256(default_bucket_hmac_secret, user id))[:32]); the secret is empty here."""
    digest = hmac.new(secret.encode(), user_id(user).encode(), hashlib.sha256).hexdigest()
    return str(uuid.UUID(digest[:32]))


def test_hello_names_the_personal_bucket(plugged):
    r = Api(plugged, "alice").get("/")
    assert r.json()["user"]["bucket"] == personal_bucket("alice")
    assert "default_bucket" in r.json()["capabilities"]


def test_bucket_and_collection_created_on_first_use(plugged):
    alice = Api(plugged, "alice")
    cid = uid("tasks")
    r = alice.get(f"/buckets/default/collections/{cid}/records")
    assert r.status_code == 200 and r.json() == {"data": []}
    bucket = alice.get("/buckets/default").json()
    assert bucket["data"]["id"] == personal_bucket("alice")
    assert bucket["permissions"]["write"] == [user_id("alice")]
    # The same objects are reachable by their real URL.
    real = f"/buckets/{personal_bucket('alice')}/collections/{cid}"
    assert alice.get(real).json()["data"]["id"] == cid
    rec = alice.ok("PUT", f"/buckets/default/collections/{cid}/records/r1", json={"data": {"a": 1}}).json()["data"]
    assert alice.get(f"{real}/records/r1").json()["data"] == rec


def test_each_user_has_their_own(plugged):
    alice, bob = Api(plugged, "alice"), Api(plugged, "bob")
    cid = uid("c")
    alice.ok("PUT", f"/buckets/default/collections/{cid}/records/r1", json={"data": {"who": "alice"}})
    assert bob.get(f"/buckets/default/collections/{cid}/records").json()["data"] == []
    assert bob.get(f"/buckets/{personal_bucket('alice')}").status_code == 403


def test_anonymous_gets_401(plugged):
    assert_error(Api(plugged).get("/buckets/default"), 401, 104)


def test_put_record_in_missing_collection_is_404_quirk(plugged):
    # Kinto skips the implicit collection when a PUT path ends with the collection id (here also the record id).
    cid = uid("x")
    r = Api(plugged, "alice").put(f"/buckets/default/collections/{cid}/records/{cid}", json={"data": {}})
    err = assert_error(r, 404, 111)
    assert err["details"] == {"id": cid, "resource_name": "collection"}


def test_data_id_default_is_replaced(plugged):
    alice = Api(plugged, "alice")
    r = alice.ok("POST", "/buckets/default/collections", json={"data": {"id": f"default{uid('')}"}}, status=201)
    assert r.json()["data"]["id"].startswith(personal_bucket("alice"))


def test_next_page_names_the_real_bucket(plugged):
    alice = Api(plugged, "alice")
    cid = uid("c")
    for i in range(3):
        alice.ok("PUT", f"/buckets/default/collections/{cid}/records/r{i}", json={"data": {}})
    r = alice.get(f"/buckets/default/collections/{cid}/records?_limit=2")
    assert f"/buckets/{personal_bucket('alice')}/collections/{cid}/records?" in r.headers["Next-Page"]


def test_delete_then_recreated_empty(plugged):
    carol = Api(plugged, uid("carol"))
    cid = uid("c")
    carol.ok("PUT", f"/buckets/default/collections/{cid}/records/r1", json={"data": {}})
    assert carol.ok("DELETE", "/buckets/default").json()["data"]["deleted"] is True
    assert carol.get(f"/buckets/default/collections/{cid}/records").json()["data"] == []


def test_in_batch(plugged):
    alice = Api(plugged, "alice")
    cid = uid("c")
    r = alice.ok("POST", "/batch", json={"defaults": {"method": "PUT"}, "requests": [
        {"path": f"/buckets/default/collections/{cid}/records/r{i}", "body": {"data": {"i": i}}} for i in range(3)]})
    assert [s["status"] for s in r.json()["responses"]] == [201, 201, 201]
    assert len(alice.get(f"/buckets/default/collections/{cid}/records").json()["data"]) == 3


def test_core_server_has_no_default_bucket(api):
    # Without the plugin, `default` is an ordinary bucket id nobody created.
    assert api.get("/buckets/default").status_code == 403
