#!/usr/bin/env python3
"""Instruction counts of the `kinto` server for a fixed storage.sync workload, under callgrind.

Timings on a shared machine are noisy; instruction counts are repeatable, so two builds compare exactly:

    python3 loadtests/callgrind.py --binary target/release/kinto --users 4 --rounds 5

Starts the binary under `valgrind --tool=callgrind` on a fresh data directory (default bucket plugin, as
`bench.py`), runs one warm-up round per user, zeroes the counters, then runs `--rounds` rounds of the
storagesync scenario per user (the same six requests as `loadtests/src/scenarios/storage_sync.rs`: create a
collection, PUT a record, pull `_since`, update with `If-Match`, a `/batch` of 25 PUTs, delete), sequentially
over one keep-alive connection per user, and prints the server's instructions per round and per request.
`--only-batch` runs only the `/batch` request of each round; `--ceiling` drives `kinto-ceiling` instead (one
echo PUT per round, as the `ceiling` scenario), for the instructions of the minimal axum handler; `--keep FILE`
keeps the dump for `callgrind_annotate --inclusive=yes FILE`. Standard library only.
"""

import argparse
import base64
import glob
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid


def request(conn, method, path, auth, body=None, headers=None, expect=None):
    h = {"Authorization": auth, **(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=h)
    r = conn.getresponse()
    payload = r.read()
    if expect is not None and r.status != expect:
        raise SystemExit(f"{method} {path}: {r.status} {payload[:500]!r}")
    return json.loads(payload) if payload else None


def batch_body(base):
    return {"defaults": {"method": "PUT", "headers": {"If-None-Match": "*"}},
            "requests": [{"path": f"{base}/{uuid.uuid4()}", "body": {"data": {"i": i, "title": "batched"}}}
                         for i in range(25)]}


def round_(conn, auth, n, only_batch, ceiling=False):
    """One storage.sync round; returns the number of requests sent."""
    if ceiling:
        request(conn, "PUT", f"/v1/echo/{uuid.uuid4()}", auth,
                {"data": {"title": "a bookmark", "url": "https://example.com/", "tags": ["x"]}}, expect=200)
        return 1
    coll = f"/v1/buckets/default/collections/ext-{n}"
    records = f"{coll}/records"
    if only_batch:
        if n == 0:
            request(conn, "PUT", coll, auth, headers={"If-None-Match": "*"}, expect=201)
        out = request(conn, "POST", "/v1/batch", auth, batch_body("/buckets/default/collections/ext-0/records"),
                      expect=200)
        assert all(r["status"] == 201 for r in out["responses"]), out
        return 1
    request(conn, "PUT", coll, auth, headers={"If-None-Match": "*"}, expect=201)
    rid = str(uuid.uuid4())
    rec = request(conn, "PUT", f"{records}/{rid}", auth,
                  {"data": {"title": "a bookmark", "url": "https://example.com/", "tags": ["x"]}},
                  {"If-None-Match": "*"}, 201)
    request(conn, "GET", f"{records}?_since=0", auth, expect=200)
    ts = rec["data"]["last_modified"]
    request(conn, "PUT", f"{records}/{rid}", auth, {"data": {"title": "renamed", "url": "https://example.com/"}},
            {"If-Match": f'"{ts}"'}, 200)
    out = request(conn, "POST", "/v1/batch", auth, batch_body(records[3:]), expect=200)
    assert all(r["status"] == 201 for r in out["responses"]), out
    request(conn, "DELETE", f"{records}/{rid}", auth, expect=200)
    return 6


def wait_up(port, ceiling, deadline=120):
    t0 = time.time()
    while time.time() - t0 < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            if ceiling:
                return c.connect()
            c.request("GET", "/v1/__heartbeat__")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("server did not start")


def total_ir(path):
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise SystemExit(f"no totals in {path}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/kinto")
    ap.add_argument("--users", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--port", type=int, default=8897)
    ap.add_argument("--only-batch", action="store_true")
    ap.add_argument("--ceiling", action="store_true", help="--binary is kinto-ceiling")
    ap.add_argument("--keep", help="copy the callgrind dump of the measured part here (for callgrind_annotate)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="kinto-callgrind-")
    out = os.path.join(work, "callgrind.out")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KINTO_")},
           "KINTO_BIND": f"127.0.0.1:{args.port}", "KINTO_DATA_DIR": os.path.join(work, "data"),
           "KINTO_INCLUDES": "kinto.plugins.default_bucket", "KINTO_USERID_HMAC_SECRET": "load-test-secret",
           # Kinto's code defaults, not `kinto init`'s (the binary's own defaults: accounts only).
           "KINTO_MULTIAUTH_POLICIES": "basicauth", "KINTO_BUCKET_CREATE_PRINCIPALS": "system.Authenticated",
           "KINTO_DEFAULT_BUCKET_HMAC_SECRET": "",
           "KINTO_LOG_LEVEL": "warn"}
    extra = ["--bind", f"127.0.0.1:{args.port}"] if args.ceiling else []
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", args.binary, *extra],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(args.port, args.ceiling)
        users = []
        for u in range(args.users):
            auth = "Basic " + base64.b64encode(f"sync-{u}:secret".encode()).decode()
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=300)
            round_(conn, auth, 0, args.only_batch, args.ceiling)  # warm-up: bucket, caches, connection
            users.append((conn, auth))
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
        sent = 0
        for n in range(1, args.rounds + 1):
            for conn, auth in users:
                sent += round_(conn, auth, n, args.only_batch, args.ceiling)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
        dumps = sorted(glob.glob(out + "*"), key=os.path.getmtime)
        ir = total_ir(dumps[-1])
        if args.keep:
            shutil.copy(dumps[-1], args.keep)
        rounds = args.users * args.rounds
        print(json.dumps({"binary": args.binary, "rounds": rounds, "requests": sent, "instructions": ir,
                          "per_round": ir // rounds, "per_request": ir // sent}))
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
