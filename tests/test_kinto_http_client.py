"""The real Python client (kinto-http 11.x) against the server: what its users do every day.

Runs on every selected target; on `ref` it proves the test itself, on `single`/`split` it checks ours.
"""

import itertools

import pytest
from kinto_http import Client, KintoException

from api import PASSWORD, uid, user_id


def client(server, user="alice", **kw):
    return Client(server_url=server.url, auth=(user, PASSWORD), **kw)


@pytest.fixture
def kc(server):
    """A client bound to a fresh bucket and collection."""
    c = client(server)
    bid, cid = uid("b"), uid("c")
    c.create_bucket(id=bid)
    c.create_collection(id=cid, bucket=bid)
    return client(server, bucket=bid, collection=cid)


def test_server_info(server):
    info = client(server).server_info()
    assert info["user"]["id"] == user_id("alice")
    assert info["settings"]["batch_max_requests"] == 25


def test_buckets_collections_records(kc):
    created = kc.create_record(data={"title": "first"})
    rid = created["data"]["id"]
    assert kc.get_record(id=rid)["data"]["title"] == "first"
    updated = kc.update_record(id=rid, data={"title": "second"})
    assert updated["data"]["last_modified"] > created["data"]["last_modified"]
    patched = kc.patch_record(id=rid, data={"extra": 1})
    assert patched["data"] == {**updated["data"], "extra": 1, "last_modified": patched["data"]["last_modified"]}
    assert [r["id"] for r in kc.get_records()] == [rid]
    assert kc.get_collection()["data"]["id"] == kc.collection_name
    assert kc.get_bucket()["data"]["id"] == kc.bucket_name
    kc.delete_record(id=rid)
    assert kc.get_records() == []
    with pytest.raises(KintoException) as e:
        kc.get_record(id=rid)
    assert e.value.response.status_code == 404


def test_safe_create_conflict(kc):
    kc.create_record(id="dup", data={"n": 1})
    # The client sends If-None-Match: * by default: a second create must conflict.
    with pytest.raises(KintoException) as e:
        kc.create_record(id="dup", data={"n": 2})
    assert e.value.response.status_code == 412
    assert kc.create_record(id="dup", data={"n": 3}, if_not_exists=True)["data"]["n"] == 1


def test_safe_update_with_stale_version(kc):
    rec = kc.create_record(data={"n": 1})["data"]
    kc.update_record(data={**rec, "n": 2})
    with pytest.raises(KintoException) as e:
        kc.update_record(data={**rec, "n": 3})  # If-Match: the old last_modified
    assert e.value.response.status_code == 412


def test_permissions(server, kc):
    bob = client(server, "bob", bucket=kc.bucket_name, collection=kc.collection_name)
    rid = kc.create_record(data={"secret": 1})["data"]["id"]
    with pytest.raises(KintoException) as e:
        bob.get_record(id=rid)
    assert e.value.response.status_code == 403

    resp = kc.update_record(id=rid, data={"secret": 1}, permissions={"read": [user_id("bob")]})
    assert resp["permissions"]["read"] == [user_id("bob")]
    assert bob.get_record(id=rid)["data"]["secret"] == 1

    kc.update_bucket(permissions={"write": [user_id("bob")]})
    bob.create_record(id="bobs", data={"by": "bob"})
    assert {r["id"] for r in kc.get_records()} == {rid, "bobs"}


def test_batch(kc):
    with kc.batch() as b:
        for i in range(30):  # more than batch_max_requests: the client splits it
            b.create_record(id=f"r{i:02d}", data={"i": i})
        b.delete_record(id="r00")
    results = b.results()
    assert len(results) == 31
    assert all(r["data"]["id"] for r in results)
    ids = {r["id"] for r in kc.get_records()}
    assert ids == {f"r{i:02d}" for i in range(1, 30)}


def test_since(kc):
    for i in range(3):
        kc.create_record(id=f"r{i}", data={"i": i})
    timestamp = kc.get_records_timestamp()
    assert int(timestamp) == max(r["last_modified"] for r in kc.get_records())
    kc.create_record(id="r3", data={"i": 3})
    kc.delete_record(id="r0")
    changes = kc.get_records(_since=timestamp)
    assert [(r["id"], r.get("deleted", False)) for r in changes] == [("r0", True), ("r3", False)]


def test_pagination_with_paginate_by(pool, target):
    c = client(pool.get(target, "paged"))
    bid, cid = uid("b"), uid("c")
    c.create_bucket(id=bid)
    c.create_collection(id=cid, bucket=bid)
    c = client(pool.get(target, "paged"), bucket=bid, collection=cid)
    with c.batch() as b:
        for i in range(12):
            b.create_record(id=f"r{i:02d}", data={"i": i})
    # Bounded first: the client recurses on Next-Page, so a server that never ends pagination would blow its stack.
    pages = list(itertools.islice(c.get_paginated_records(), 10))
    assert [len(p["data"]) for p in pages] == [5, 5, 2]
    records = c.get_records()
    assert [r["id"] for r in records] == [f"r{i:02d}" for i in range(11, -1, -1)]
