#!/usr/bin/env python3
"""Instructions per list request on one collection of N records, for several N (issue 21: "the same page cost at
1,000,000 records as at 10,000, within 1.5×"), under callgrind, so the ratio does not depend on the machine's noise:

    python3 loadtests/page_cost.py --binary target/release/kinto --sizes 10000,1000000

Per size: the binary runs natively on a fresh data directory while the collection is filled (`/batch` of 25 PUTs,
from a few threads) and left until its background flushes and compactions are done (its CPU idle), then is stopped
and started again under `valgrind --tool=callgrind` on the same directory, idle again before measuring. Each
request kind is sent once to warm the caches, the counters are zeroed, the request is sent `--repeat` times
and the counters dumped: the instructions of the server per request. Kinds: the first page with the default sort,
with `_sort=-last_modified`, with a filter on a field a quarter of the records hold; the page behind the token of
the 50th page of 10; `_since` a recent timestamp; `HEAD` for the count. Prints one JSON line per size, then the
ratios of the largest size to the smallest. With `--permissions`, the sizes are numbers of buckets of another user,
and the request is `GET /permissions` of a user owning three. `--only` measures some kinds; `--keep DIR` keeps
each kind's dump for `callgrind_annotate --inclusive=yes DIR/<size>/<kind>.cg`. Standard library only.
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
import threading
import time
import urllib.parse

from callgrind import total_ir, wait_up

BATCH = 25
CHANNELS = ("release", "beta", "nightly", "aurora")
AUTH = "Basic " + base64.b64encode(b"bench:bench-secret").decode()
COLLECTION = "/v1/buckets/big/collections/c"


def request(conn, method, path, body=None):
    headers = {"Authorization": AUTH}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    payload = r.read()
    if r.status >= 400:
        raise SystemExit(f"{method} {path}: {r.status} {payload[:300]!r}")
    return r, (json.loads(payload) if payload else None)


def populate(port, n, threads=4):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    request(conn, "PUT", "/v1/buckets/big", {})
    request(conn, "PUT", COLLECTION, {})
    batches = [range(start, min(start + BATCH, n)) for start in range(0, n, BATCH)]

    def work(part):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        for ids in part:
            body = {"defaults": {"method": "PUT"}, "requests": [
                {"path": f"{COLLECTION[3:]}/records/r{i:08d}",
                 "body": {"data": {"build": {"channel": CHANNELS[i % 4]}, "n": i}}} for i in ids]}
            _, out = request(c, "POST", "/v1/batch", body)
            if any(r["status"] >= 400 for r in out["responses"]):
                raise SystemExit(f"batch failed: {out['responses'][:2]}")
    workers = [threading.Thread(target=work, args=(batches[t::threads],)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def populate_buckets(port, n, threads=4):
    """`n` buckets of user `other`, and three of `bench`, whose `/permissions` is measured."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    for i in range(3):
        request(conn, "PUT", f"/v1/buckets/mine-{i}", {})
    batches = [range(start, min(start + BATCH, n)) for start in range(0, n, BATCH)]
    other = "Basic " + base64.b64encode(b"other:other-secret").decode()

    def work(part):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        for ids in part:
            body = json.dumps({"requests": [{"method": "PUT", "path": f"/buckets/other-{i}", "body": {}}
                                            for i in ids]}).encode()
            c.request("POST", "/v1/batch", body=body, headers={"Authorization": other,
                                                                 "Content-Type": "application/json"})
            r = c.getresponse()
            out = json.loads(r.read())
            if r.status != 200 or any(x["status"] >= 400 for x in out["responses"]):
                raise SystemExit(f"batch failed: {r.status} {str(out)[:300]}")
    workers = [threading.Thread(target=work, args=(batches[t::threads],)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def permissions_requests(conn):
    _, body = request(conn, "GET", "/v1/permissions")
    # Its three buckets, and the root where it may create buckets: never the others' buckets.
    if not 3 <= len(body["data"]) <= 4:
        raise SystemExit(f"/permissions of bench: {len(body['data'])} entries")
    return {"permissions": ("GET", "/v1/permissions")}


def requests_of(conn):
    """The measured kinds: name -> (method, path)."""
    records = f"{COLLECTION}/records"
    # The token of the 50th page of 10 (default sort), found by paging, not measured.
    path = f"{records}?_limit=10"
    for _ in range(49):
        r, _ = request(conn, "GET", path)
        path = urllib.parse.urlsplit(r.getheader("Next-Page")).path + "?" + \
            urllib.parse.urlsplit(r.getheader("Next-Page")).query
    _, body = request(conn, "GET", f"{records}?_limit=1")
    recent = body["data"][0]["last_modified"] - 1
    return {
        "first_page": ("GET", f"{records}?_limit=10"),
        "first_page_sorted": ("GET", f"{records}?_limit=10&_sort=-last_modified"),
        "first_page_filtered": ("GET", f"{records}?_limit=10&build.channel=beta"),
        "page_50_by_token": ("GET", path),
        "since_recent": ("GET", f"{records}?_since={recent}"),
        "head_count": ("HEAD", f"{records}"),
    }


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def wait_idle(pid, quiet_seconds=3, deadline=1800):
    """Waits until the process has used under 20 ms of CPU a second for `quiet_seconds` in a row: the store's
    flushes and compactions after a fill run on background threads, which callgrind would count too."""
    t0, quiet, last = time.time(), 0, cpu_ticks(pid)
    while quiet < quiet_seconds and time.time() - t0 < deadline:
        time.sleep(1)
        now = cpu_ticks(pid)
        quiet = quiet + 1 if now - last <= 2 else 0
        last = now
    return round(time.time() - t0, 1)


def measure(binary, env, work, port, repeat, kinds, quiet, keep=None):
    out = os.path.join(work, "callgrind.out")
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Opening a large store replays its journal, some fifty times slower under valgrind.
        t0 = time.time()
        wait_up(port, False, deadline=3600)
        started = round(time.time() - t0, 1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        result = {"start_seconds_under_valgrind": started, "idle_wait_seconds": wait_idle(proc.pid, quiet)}
        for name, (method, path) in kinds(conn).items():
            request(conn, method, path)  # warm-up
            subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
            for _ in range(repeat):
                request(conn, method, path)
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
            dumps = sorted(glob.glob(out + "*"), key=os.path.getmtime)
            result[name] = total_ir(dumps[-1]) // repeat
            if keep:
                os.makedirs(keep, exist_ok=True)
                shutil.copy(dumps[-1], os.path.join(keep, f"{name}.cg"))
        return result
    finally:
        proc.terminate()
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/kinto")
    ap.add_argument("--sizes", default="10000,1000000")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--port", type=int, default=8898)
    ap.add_argument("--quiet-seconds", type=int, default=10,
                    help="seconds in a row of an idle server before measuring (its compactions done)")
    ap.add_argument("--keep", metavar="DIR",
                    help="copy each kind's callgrind dump to DIR/<size>/<kind>.cg (for callgrind_annotate)")
    ap.add_argument("--only", help="comma-separated kinds to measure (default: all)")
    ap.add_argument("--permissions", action="store_true",
                    help="sizes are numbers of buckets of another user; measure GET /permissions of a user "
                         "owning three (issue 21: the same cost at 1,000,000 buckets as at 1,000)")
    args = ap.parse_args()
    fill, all_kinds = (populate_buckets, permissions_requests) if args.permissions else (populate, requests_of)
    only = set(args.only.split(",")) if args.only else None

    def kinds(conn):
        return {k: v for k, v in all_kinds(conn).items() if only is None or k in only}
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {}
    for n in sizes:
        work = tempfile.mkdtemp(prefix="kinto-page-cost-")
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("KINTO_")},
               "KINTO_BIND": f"127.0.0.1:{args.port}", "KINTO_DATA_DIR": os.path.join(work, "data"),
               "KINTO_USERID_HMAC_SECRET": "load-test-secret", "KINTO_MULTIAUTH_POLICIES": "basicauth",
               "KINTO_BUCKET_CREATE_PRINCIPALS": "system.Authenticated", "KINTO_LOG_LEVEL": "warn",
               "KINTO_EXPERIMENTAL_PERMISSIONS_ENDPOINT": "true"}
        try:
            native = subprocess.Popen([args.binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_up(args.port, False, deadline=300)
                t0 = time.time()
                fill(args.port, n)
                filled = time.time() - t0
                wait_idle(native.pid, args.quiet_seconds)
            finally:
                native.terminate()
                native.wait(120)
            results[n] = {"size": n, "populate_seconds": round(filled, 1),
                          "instructions_per_request": measure(args.binary, env, work, args.port, args.repeat, kinds,
                                                                     args.quiet_seconds,
                                                                     args.keep and os.path.join(args.keep, str(n)))}
            print(json.dumps(results[n]), flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    small, large = min(sizes), max(sizes)
    if small != large:
        a, b = results[small]["instructions_per_request"], results[large]["instructions_per_request"]
        print(json.dumps({"ratio": f"{large} / {small}",
                          **{k: round(b[k] / a[k], 2) for k in a if "seconds" not in k}}))


if __name__ == "__main__":
    main()
