"""kinto-http.py's documented operations not already in test_kinto_http_client.py: groups, listings and bulk
deletes, permissions (objects' and the /permissions endpoint), history, accounts, pagination over ten thousand
records, retries on 503 (shards down) and 429 (a rate limit) with `Retry-After`, and `Backoff`. Runs on every target where the behaviour
exists; on `ref` it proves the test itself.
"""

import itertools
import re
import threading
import time

import pytest
from kinto_http import Client, KintoException
from kinto_http.exceptions import BackoffException

from api import PASSWORD, Api, uid, user_id
from harness import make_server


def client(server, user="alice", **kw):
    return Client(server_url=server.url, auth=(user, PASSWORD), **kw)


def fresh_bucket(c):
    bid = uid("b")
    c.create_bucket(id=bid)
    return bid


def test_groups_as_principals(server):
    alice, bob = client(server), client(server, "bob")
    bid = fresh_bucket(alice)
    alice.create_group(id="editors", bucket=bid, data={"members": [user_id("carl")]})
    alice.patch_group(id="editors", bucket=bid, data={"members": [user_id("carl"), user_id("bob")]})
    assert alice.get_group(id="editors", bucket=bid)["data"]["members"] == [user_id("carl"), user_id("bob")]
    alice.create_collection(id="c", bucket=bid, permissions={"write": [f"/buckets/{bid}/groups/editors"]})
    # bob writes through his membership, and his principals now include the group.
    bob.create_record(id="by-bob", bucket=bid, collection="c", data={"n": 1})
    assert f"/buckets/{bid}/groups/editors" in bob.server_info()["user"]["principals"]
    alice.update_group(id="editors", bucket=bid, data={"members": []})
    with pytest.raises(KintoException) as e:
        bob.create_record(id="again", bucket=bid, collection="c", data={"n": 2})
    assert e.value.response.status_code == 403
    alice.create_group(id="other", bucket=bid, data={"members": []})
    assert sorted(g["id"] for g in alice.get_groups(bucket=bid)) == ["editors", "other"]
    alice.delete_group(id="other", bucket=bid)
    alice.delete_groups(bucket=bid)
    assert alice.get_groups(bucket=bid) == []


def test_listings_and_bulk_deletes(server):
    c = client(server)
    bid = fresh_bucket(c)
    for cid in ("one", "two", "three"):
        c.create_collection(id=cid, bucket=bid, data={"label": cid})
    assert sorted(x["id"] for x in c.get_collections(bucket=bid)) == ["one", "three", "two"]
    assert bid in {b["id"] for b in c.get_buckets()}
    with c.batch(bucket=bid, collection="one") as b:
        for i in range(5):
            b.create_record(id=f"r{i}", data={"i": i})
    c.delete_records(bucket=bid, collection="one")
    assert c.get_records(bucket=bid, collection="one") == []
    c.delete_collection(id="two", bucket=bid)
    c.delete_collections(bucket=bid)
    assert c.get_collections(bucket=bid) == []
    c.delete_bucket(id=bid)
    with pytest.raises(KintoException) as e:
        c.get_bucket(id=bid)
    assert e.value.response.status_code in (403, 404)


def test_object_permissions_and_permissions_endpoint(plugged):
    alice, bob = client(plugged), client(plugged, "bob")
    bid = fresh_bucket(alice)
    alice.patch_bucket(id=bid, permissions={"read": [user_id("bob")]})
    assert alice.get_bucket(id=bid)["permissions"]["read"] == [user_id("bob")]
    alice.create_collection(id="c", bucket=bid, permissions={"record:create": [user_id("bob")]})
    bob.create_record(id="mine", bucket=bid, collection="c", data={})
    mine = {(p["resource_name"], p.get("id")): sorted(p["permissions"]) for p in bob.get_permissions()
            if p.get("bucket_id") == bid}
    assert "read" in mine[("bucket", bid)] and "write" not in mine[("bucket", bid)]
    assert "record:create" in mine[("collection", "c")]
    assert "write" in mine[("record", "mine")]


def test_history(plugged):
    c = client(plugged)
    bid = fresh_bucket(c)
    c.create_collection(id="c", bucket=bid)
    c.create_record(id="r", bucket=bid, collection="c", data={"v": 1})
    c.update_record(id="r", bucket=bid, collection="c", data={"v": 2})
    entries = c.get_history(bucket=bid)
    assert [(e["action"], e["resource_name"]) for e in entries] == [
        ("update", "record"), ("create", "record"), ("create", "collection"), ("create", "bucket")]
    assert entries[0]["target"]["data"]["v"] == 2
    assert [e["uri"] for e in c.get_history(bucket=bid, resource_name="record", _limit=1)] == [
        f"/buckets/{bid}/collections/c/records/r"]
    c.purge_history(bucket=bid)
    assert c.get_history(bucket=bid) == []


def test_accounts(plugged):
    name = uid("acct")
    anon = Client(server_url=plugged.url)
    anon.session.request("put", f"/accounts/{name}", data={"password": "pw-1"})
    me = Client(server_url=plugged.url, auth=(name, "pw-1"))
    assert me.server_info()["user"]["id"] == f"account:{name}"
    me.session.request("patch", f"/accounts/{name}", data={"password": "pw-2"})
    me = Client(server_url=plugged.url, auth=(name, "pw-2"))
    assert me.server_info()["user"]["id"] == f"account:{name}"
    # A wrong password is not the account (with `account basicauth`, Basic auth takes it as another user).
    assert Client(server_url=plugged.url, auth=(name, "wrong")).server_info()["user"]["id"] != f"account:{name}"
    bid = fresh_bucket(me)
    assert me.get_bucket(id=bid)["permissions"]["write"] == [f"account:{name}"]


def test_pagination_over_ten_thousand_records(server):
    total = 10_010
    c = client(server)
    bid = fresh_bucket(c)
    c.create_collection(id="big", bucket=bid)
    c = client(server, bucket=bid, collection="big")
    with c.batch() as b:  # split by the client into batch_max_requests-sized requests
        for i in range(total):
            b.create_record(id=f"r{i:05d}", data={"i": i})
    assert sum(1 for r in b.results() if r["data"]["id"]) == total
    # Without _limit, pages are the server's storage_max_fetch_size (10000, Kinto's default).
    pages = list(itertools.islice(c.get_paginated_records(), 5))
    assert [len(p["data"]) for p in pages] == [10_000, 10]
    records = c.get_records(_limit=1000, pages=float("inf"), _sort="i")
    assert [r["i"] for r in records] == list(range(total))


@pytest.mark.targets("split")
def test_retry_on_503_with_retry_after(target):
    """A gateway whose shards are down answers 503 with Retry-After; the client waits and tries again."""
    server = make_server(target, "retries", {"retry_after_seconds": 1})
    try:
        api = Api(server, "alice")
        bid = api.create_bucket()
        for i in range(server.count):
            server.kill_shard(i)
        r = api.get(f"/buckets/{bid}")
        assert r.status_code == 503 and r.headers["Retry-After"] == "1", (r.status_code, r.headers)
        with pytest.raises(KintoException) as e:
            client(server).get_bucket(id=bid)
        assert e.value.response.status_code == 503

        # The waiting client runs in a thread and the shards restart from this one: the harness's processes die
        # with the thread that started them (PR_SET_PDEATHSIG).
        outcome = {}

        def patient():
            try:
                outcome["data"] = client(server, retry=10).get_bucket(id=bid)["data"]
            except KintoException as e:
                outcome["error"] = e

        waiter = threading.Thread(target=patient)
        started = time.monotonic()
        waiter.start()
        time.sleep(1.5)
        for i in range(server.count):
            server.restart_shard(i)
        waiter.join(60)
        assert outcome.get("data", {}).get("id") == bid, outcome
        assert time.monotonic() - started >= 1.5
    finally:
        server.cleanup()


def rate_user_refusals(server):
    text = Api(server).get("/__metrics__").text
    found = re.search(r'^kinto_admission_rejections_total\{reason="rate_user"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.mark.targets("single", "split")
def test_retry_on_429_with_retry_after(target):
    """Ours only (Kinto has no rate limits): over a user's rate, 429 with Retry-After, which the client waits out."""
    # One request every 4 s after a burst of 2: seconds of margin before a token comes back, even though each
    # refusal is held a moment (ratelimit_refusal_delay_ms).
    settings = {"includes": "kinto.plugins.prometheus", "ratelimit_user_per_second": 0.25, "ratelimit_user_burst": 2}
    server = make_server(target, "ratelimit-client", settings)
    try:
        # Near the end of the burst the limiter asks for Backoff, and kinto-http stops sending by itself.
        c = client(server)
        with pytest.raises(BackoffException):
            for _ in range(4):
                c.get_buckets()
        r = Api(server, "alice").get("/buckets")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        with pytest.raises(KintoException) as e:
            client(server).get_buckets()
        assert e.value.response.status_code == 429
        refused = rate_user_refusals(server)
        started = time.monotonic()
        assert client(server, retry=5).get_buckets() is not None
        # Refused first, then it waited for Retry-After and tried again.
        assert rate_user_refusals(server) > refused
        assert time.monotonic() - started >= 1
    finally:
        server.cleanup()


def test_backoff_is_honoured(backoff_api):
    c = client(backoff_api.server)
    c.server_info()
    with pytest.raises(BackoffException) as e:
        c.get_buckets()
    assert 0 < e.value.backoff <= 10
    # A new client has no memory of it; its first answer carries the header again.
    assert client(backoff_api.server).get_buckets() is not None
