"""Acknowledged writes survive SIGKILL (ours only: the reference runs on a memory backend).

Each test starts its own server (it gets killed), on the target's topology: `single` kills the one process,
`split` kills the gateway and both shards.
"""

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
