"""Users writing through a gateway while shards move or restart (test_resharding.py, test_shard_restart.py):
If-Match chains, POSTs, /batch, default-bucket creation, new buckets, accounts. Every acknowledged write is
remembered with its content, every error kept, and `verify` reads them all back afterwards."""

import re
import threading
import time

import requests


# The lister's buckets: enough that every shard holds some of them, whatever the map.
LISTER = ("lister", "pw")
LISTED = [f"l{i}" for i in range(48)]


def stamp(r):
    return int(r.headers["ETag"].strip('"'))


class Writers:
    """Users writing until stopped; every acknowledged write is remembered, every error kept."""

    def __init__(self, url, users=4, tolerate=()):
        self.url, self.users, self.tolerate = url, users, tolerate
        self.failures, self.tolerated = [], 0
        self.chains = {}  # user -> (last acknowledged n, its timestamp)
        self.stamps = {}  # collection -> timestamps in the order acknowledged
        self.records = {}  # (user, collection path) -> {record id: its acknowledged data}
        self.buckets = {}  # user -> acknowledged new buckets
        self.acknowledged = 0  # writes answered 2xx (a batch's sub-requests each)
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(u,)) for u in range(users)]
        self.lists = 0  # lists read whole by the lister
        self.threads.append(threading.Thread(target=self.list_buckets))

    def check(self, u, status, text, what):
        if status in (200, 201):
            self.acknowledged += 1
            return True
        if status in self.tolerate:
            self.tolerated += 1
        else:
            self.failures.append((u, what, status, text[:300]))
        return False

    def record(self, u, path, data):
        self.records.setdefault((u, path), {})[data["id"]] = data

    def run(self, u):
        s, auth = requests.Session(), (f"user{u}", "pw")
        base = f"{self.url}/buckets/w{u}/collections"
        etag, k, uncertain = None, 0, False
        while not self.stop_flag.is_set():
            k += 1
            try:
                headers = {"If-Match": etag} if etag else {"If-None-Match": "*"}
                r = s.put(f"{base}/c/records/r", json={"data": {"n": k}}, headers=headers, auth=auth, timeout=60)
                if r.status_code == 412 and uncertain:
                    # The tolerated failure had landed after all: the chain goes on from what is stored.
                    r = s.get(f"{base}/c/records/r", auth=auth, timeout=60)
                    k = r.json()["data"]["n"]
                    self.stamps[f"w{u}/c"].append(stamp(r))
                if self.check(u, r.status_code, r.text, "chain"):
                    etag, uncertain = r.headers["ETag"], False
                    self.chains[u] = (r.json()["data"]["n"], stamp(r))
                    if r.request.method == "PUT":
                        self.stamps.setdefault(f"w{u}/c", []).append(stamp(r))
                elif r.status_code in self.tolerate:
                    uncertain = True
                elif r.status_code == 412:
                    return
                if k % 2 == 0:
                    # A POST is not idempotent: a retry of one that ran would make a second record.
                    r = s.post(f"{base}/bulk/records", json={"data": {"posted": k}}, auth=auth, timeout=60)
                    if self.check(u, r.status_code, r.text, "post"):
                        self.record(u, f"/buckets/w{u}/collections/bulk", r.json()["data"])
                        self.stamps.setdefault(f"w{u}/bulk", []).append(r.json()["data"]["last_modified"])
                if k % 3 == 0:
                    body = {"defaults": {"method": "PUT", "body": {"data": {"k": k}}}, "requests": [
                        {"path": f"/buckets/w{u}/collections/bulk/records/{k}-a"},
                        {"path": f"/buckets/w{u}/collections/bulk/records/{k}-b"},
                        {"path": f"/buckets/default/collections/d/records/{k}"},
                        {"method": "POST", "path": f"/buckets/w{u}/collections/bulk/records"}]}
                    r = s.post(f"{self.url}/batch", json=body, auth=auth, timeout=60)
                    if r.status_code in (200, 201):
                        for sub, req in zip(r.json()["responses"], body["requests"]):
                            if not self.check(u, sub["status"], str(sub), req["path"]):
                                continue
                            data = sub["body"]["data"]
                            self.record(u, req["path"].rsplit("/records", 1)[0], data)
                            if "/bulk/" in req["path"]:
                                self.stamps.setdefault(f"w{u}/bulk", []).append(data["last_modified"])
                    else:
                        self.check(u, r.status_code, r.text, "batch")
                if k % 5 == 0:
                    r = s.put(f"{self.url}/buckets/n{u}-{k}", auth=auth, timeout=60)
                    if self.check(u, r.status_code, r.text, "bucket"):
                        self.buckets.setdefault(u, []).append(f"n{u}-{k}")
                if k % 7 == 0:
                    r = s.put(f"{self.url}/buckets/default/collections/dd/records/{k}", json={"data": {}}, auth=auth,
                              timeout=60)
                    if self.check(u, r.status_code, r.text, "default"):
                        self.record(u, "/buckets/default/collections/dd", r.json()["data"])
            except requests.RequestException as e:
                self.failures.append((u, "request", repr(e)))
                time.sleep(0.1)

    def list_buckets(self):
        """A user whose buckets never change lists them, and its permissions, all along: every list must name each
        of them once, whichever shard holds it and whether a move is handing it over."""
        s, auth = requests.Session(), LISTER
        expected = sorted(LISTED)
        while not self.stop_flag.is_set():
            try:
                whole = True
                for path in ("/buckets?_limit=10000", "/permissions?resource_name=bucket&_limit=10000"):
                    r = s.get(f"{self.url}{path}", auth=auth, timeout=60)
                    if r.status_code == 404 and path.startswith("/permissions"):
                        continue  # the deployment has no permissions endpoint
                    if r.status_code in self.tolerate:
                        self.tolerated += 1
                        whole = False
                        continue
                    listed = sorted(o["id"] for o in r.json()["data"]) if r.status_code == 200 else None
                    if listed != expected:
                        whole = False
                        self.failures.append(("lister", path, r.status_code, listed or r.text[:300]))
                self.lists += whole
            except requests.RequestException as e:
                self.failures.append(("lister", "request", repr(e)))
                time.sleep(0.1)

    def __enter__(self):
        for b in LISTED:
            assert requests.put(f"{self.url}/buckets/{b}", auth=LISTER, timeout=30).status_code in (200, 201)
        for u in range(self.users):
            auth = (f"user{u}", "pw")
            # Even users are accounts: their password is checked against their account's shard, which moves too.
            if u % 2 == 0:
                r = requests.put(f"{self.url}/accounts/user{u}", json={"data": {"password": "pw"}}, timeout=30)
                assert r.status_code == 201, r.text
            assert requests.put(f"{self.url}/buckets/w{u}", auth=auth, timeout=30).status_code in (200, 201)
            for c in ("c", "bulk"):
                r = requests.put(f"{self.url}/buckets/w{u}/collections/{c}", auth=auth, timeout=30)
                assert r.status_code in (200, 201), r.text
        for t in self.threads:
            t.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=90)

    def verify(self):
        """Every acknowledged write is served with its acknowledged content (and no unacknowledged POST ran
        twice), chains and timestamps are whole, every bucket is listed once. Returns the timestamps checked."""
        for stamps in self.stamps.values():
            assert all(a < b for a, b in zip(stamps, stamps[1:])), stamps
        for u in range(self.users):
            auth = (f"user{u}", "pw")
            n, ts = self.chains[u]
            r = requests.get(f"{self.url}/buckets/w{u}/collections/c/records/r", auth=auth, timeout=30)
            assert r.status_code == 200 and r.json()["data"]["n"] == n and stamp(r) == ts, (u, n, ts, r.text)
            # The next write of a moved collection stamps above every earlier one.
            r = requests.put(f"{self.url}/buckets/w{u}/collections/c/records/r", json={"data": {"n": n + 1}},
                             headers={"If-Match": f'"{ts}"'}, auth=auth, timeout=30)
            assert r.status_code == 200 and stamp(r) > ts, r.text
            self.chains[u] = (n + 1, stamp(r))
            for (user, path), acked in self.records.items():
                if user != u:
                    continue
                r = requests.get(f"{self.url}{path}/records?_limit=10000", auth=auth, timeout=30)
                assert r.status_code == 200, r.text
                stored = {rec["id"]: rec for rec in r.json()["data"]}
                for rid, data in acked.items():
                    assert stored.get(rid) == data, (u, path, rid, data, stored.get(rid))
                if not self.tolerate:
                    # Without a tolerated failure every stored POST was acknowledged: none ran twice.
                    posted = {rid for rid in stored if not re.fullmatch(r"\d+(-[ab])?", rid)}
                    assert posted <= set(acked), (u, path, posted - set(acked))
            r = requests.get(f"{self.url}/buckets?_limit=10000", auth=auth, timeout=30)
            listed = [b["id"] for b in r.json()["data"]]
            assert len(listed) == len(set(listed)), "a bucket listed by two shards"
            assert set(self.buckets.get(u, [])) | {f"w{u}"} <= set(listed)
        assert self.lists > 0, "the lister never read its lists whole"
        return sum(len(s) for s in self.stamps.values())
