"""Acknowledged writes survive SIGKILL (ours only: the reference runs on a memory backend).

Each test starts its own server (it gets killed), on the target's topology: `single` kills the one process,
`split` and `cql` kill the gateway and both shards; on `cql` one more test kills a single shard.
"""

import hashlib
import threading

import pytest
import requests

from api import PASSWORD, Api, user_id
from harness import make_server

pytestmark = pytest.mark.targets("single", "split")


@pytest.fixture
def victim(target):
    server = make_server(target, "durability", {})
    yield server
    server.cleanup()


def live_records(api, url):
    # A plain listing (no _since): durability must not depend on the querystring features tested elsewhere.
    r = api.get(url)
    assert r.status_code == 200, r.text
    assert "Next-Page" not in r.headers
    return {o["id"]: o for o in r.json()["data"]}


def test_acknowledged_writes_survive_sigkill(victim):
    api = Api(victim, "alice")
    bid = api.create_bucket()
    cid = api.create_collection(bid)
    url = f"/buckets/{bid}/collections/{cid}/records"
    acked = {}
    for i in range(40):
        acked[f"r{i}"] = api.create_record(bid, cid, {"i": i, "text": "x" * i}, rid=f"r{i}")
    for i in range(0, 40, 5):  # updates, and deletes (tombstones must survive too)
        acked[f"r{i}"] = api.ok("PATCH", f"{url}/r{i}", json={"data": {"updated": True}}).json()["data"]
    for i in range(1, 40, 7):
        acked[f"r{i}"] = api.ok("DELETE", f"{url}/r{i}").json()["data"]
    batch = api.ok("POST", "/batch", json={"requests": [
        {"method": "PUT", "path": f"{url}/b{i}", "body": {"data": {"b": i}}} for i in range(10)]}).json()
    for sub in batch["responses"]:
        assert sub["status"] == 201
        acked[sub["body"]["data"]["id"]] = sub["body"]["data"]
    api.ok("PATCH", f"/buckets/{bid}", json={"permissions": {"read": [user_id("bob")]}})
    last = max(o["last_modified"] for o in acked.values())

    victim.kill()
    victim.start()

    api = Api(victim, "alice")
    assert live_records(api, url) == {k: v for k, v in acked.items() if not v.get("deleted")}
    for rid, data in acked.items():
        if data.get("deleted"):
            assert api.get(f"{url}/{rid}").status_code == 404, f"deleted {rid} came back"
        else:
            assert api.get(f"{url}/{rid}").json()["data"] == data
    assert Api(victim, "bob").get(f"/buckets/{bid}").status_code == 200, "ACLs survive too"
    new = api.create_record(bid, cid, {"after": "restart"})
    assert new["last_modified"] > last


def test_writes_in_flight_during_sigkill(victim):
    api = Api(victim, "alice")
    bid = api.create_bucket()
    cid = api.create_collection(bid)
    url = f"/buckets/{bid}/collections/{cid}/records"
    acked, lock, stop = {}, threading.Lock(), threading.Event()

    def writer(n):
        s = requests.Session()
        s.auth = ("alice", PASSWORD)
        i = 0
        while not stop.is_set() and i < 2000:
            rid = f"w{n}-{i}"
            try:
                r = s.put(api.url(f"{url}/{rid}"), json={"data": {"n": n, "i": i}}, timeout=10)
            except requests.RequestException:
                return  # the server died under us: this write was never acknowledged
            if r.status_code == 201:
                with lock:
                    acked[rid] = r.json()["data"]
            i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    while len(acked) < 300 and all(t.is_alive() for t in threads):
        stop.wait(0.05)
    victim.kill()
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acked) >= 300

    victim.start()
    api = Api(victim, "alice")
    found = live_records(api, url)
    missing = [rid for rid, data in acked.items() if found.get(rid) != data]
    assert not missing, f"{len(missing)} acknowledged writes lost or changed, e.g. {missing[:5]}"
    assert api.create_record(bid, cid, {})["last_modified"] > max(o["last_modified"] for o in found.values())


def owner_shard(bucket_id, count=2):
    """common/placement (kinto-placement): SHA-256 slot of the bucket id, static contiguous ranges of 4096 slots."""
    slot = int.from_bytes(hashlib.sha256(bucket_id.encode()).digest()[:2], "big") % 4096
    return slot * count // 4096


@pytest.mark.targets("cql")
def test_one_shard_killed_and_restarted_loses_nothing(victim):
    """Issue 4: a gateway and two shards share one Cassandra. SIGKILL shard 0 while writers hit buckets of both
    shards: shard 1's buckets keep working, shard 0's answer 503 with Kinto's error body (never a hang), and once
    shard 0 is back every acknowledged write is there."""
    api = Api(victim, "alice")
    buckets = {0: [], 1: []}
    i = 0
    while min(len(b) for b in buckets.values()) < 2:
        bid = f"dur-{i}"
        i += 1
        if len(buckets[owner_shard(bid)]) < 2:
            buckets[owner_shard(bid)].append(api.create_bucket(bid))
    targets = [(bid, api.create_collection(bid)) for bids in buckets.values() for bid in bids]
    acked, failures, lock = {}, [], threading.Lock()
    phase = {"down": False}
    acked_while_down = {0: 0, 1: 0}
    stop = threading.Event()

    def writer(bid, cid):
        s = requests.Session()
        s.auth = ("alice", PASSWORD)
        url = api.url(f"/buckets/{bid}/collections/{cid}/records")
        n = 0
        while not stop.is_set():
            rid = f"r{n}"
            n += 1
            try:
                r = s.put(f"{url}/{rid}", json={"data": {"n": n}}, timeout=30)
            except requests.RequestException as e:
                with lock:
                    failures.append(f"{bid}: {e!r}")  # the gateway must answer, not drop the connection
                continue
            with lock:
                if r.status_code == 201:
                    acked[(bid, cid, rid)] = r.json()["data"]
                    if phase["down"]:
                        acked_while_down[owner_shard(bid)] += 1
                elif r.status_code == 503:
                    body = r.json()
                    if body.get("errno") != 201 or owner_shard(bid) != 0:
                        failures.append(f"{bid}: 503 {body}")
                else:
                    failures.append(f"{bid}: {r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=writer, args=t) for t in targets]
    for t in threads:
        t.start()
    try:
        while len(acked) < 100:
            stop.wait(0.05)
        victim.kill_shard(0)
        phase["down"] = True
        stop.wait(2.0)
        phase["down"] = False
        victim.restart_shard(0)
        stop.wait(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not failures, failures[:5]
    assert acked_while_down[1] > 0, "shard 1's buckets stopped working while shard 0 was down"
    for bid, cid in targets:
        found = live_records(api, f"/buckets/{bid}/collections/{cid}/records")
        mine = {rid: data for (b, c, rid), data in acked.items() if (b, c) == (bid, cid)}
        assert mine, f"no write acknowledged in {bid}"
        lost = [rid for rid, data in mine.items() if found.get(rid) != data]
        assert not lost, f"{bid} (shard {owner_shard(bid)}): {len(lost)} acknowledged writes lost, e.g. {lost[:5]}"
