#!/usr/bin/env python3
"""Instruction counts of the `kinto` server for paging through one big collection, under callgrind.

    python3 loadtests/callgrind_pages.py --binary target/debug/kinto --records 10000 --limit 1000

Populates a fresh data directory with `--records` small records (`/batch` of 25 POSTs, as
`bench.py --big-collection`) with the server running natively, restarts it under
`valgrind --tool=callgrind` on the same directory, sends one warm-up page, zeroes the counters, then
follows `Next-Page` from the first page of `--query` (default sort), or of `--first` (another list, such as
`/v1/permissions?_limit=100`), to the end (or sends one `--head` of it) and prints the server's instructions per
page. Instruction counts are repeatable where wall times on a shared machine are not,
so two builds (or two commits, both debug) compare exactly. `--keep FILE` keeps the dump for
`callgrind_annotate --inclusive=yes FILE`. Standard library only.
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
import urllib.parse

from callgrind import total_ir, wait_up

AUTH = "Basic " + base64.b64encode(b"pages:secret").decode()
CHANNELS = ("release", "beta", "nightly", "aurora")


def call(conn, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    conn.request(method, path, body=data, headers={"Authorization": AUTH, "Content-Type": "application/json"})
    r = conn.getresponse()
    payload = r.read()
    if r.status >= 400:
        raise SystemExit(f"{method} {path}: {r.status} {payload[:300]!r}")
    return r, payload


def populate(conn, n):
    call(conn, "PUT", "/v1/buckets/big", {})
    call(conn, "PUT", "/v1/buckets/big/collections/c", {})
    path = "/buckets/big/collections/c/records"
    for start in range(0, n, 25):
        reqs = [{"method": "POST", "path": path,
                 "body": {"data": {"build": {"channel": CHANNELS[i % 4], "number": i}}}}
                for i in range(start, min(start + 25, n))]
        call(conn, "POST", "/v1/batch", {"requests": reqs})


def paginate(conn, first):
    """Follows `Next-Page` to the end; the number of pages and of records."""
    pages, records, path = 0, 0, first
    while path:
        r, payload = call(conn, "GET", path)
        pages += 1
        records += len(json.loads(payload)["data"])
        nxt = r.getheader("Next-Page")
        path = None
        if nxt:
            u = urllib.parse.urlsplit(nxt)
            path = f"{u.path}?{u.query}"
    return pages, records


def start(binary, env, out=None):
    cmd = [binary] if out is None else ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()


def server_env(port, data):
    """The server's environment: ours without KINTO_*, then Basic auth, one data directory."""
    settings = {"BIND": f"127.0.0.1:{port}", "DATA_DIR": data, "USERID_HMAC_SECRET": "load-test-secret",
                "MULTIAUTH_POLICIES": "basicauth", "BUCKET_CREATE_PRINCIPALS": "system.Authenticated",
                "LOG_LEVEL": "warn"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINTO_")}
    env.update({f"KINTO_{k}": v for k, v in settings.items()})
    return env


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/debug/kinto")
    ap.add_argument("--records", type=int, default=10000)
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--query", default="", help="more querystring, e.g. `_sort=build.number`")
    ap.add_argument("--first", help="another first page to follow, e.g. `/v1/permissions?_limit=1000`")
    ap.add_argument("--head", action="store_true", help="one HEAD of the first page instead of paging")
    ap.add_argument("--keep", help="copy the callgrind dump of the measured part here")
    ap.add_argument("--port", type=int, default=8898)
    ap.add_argument("--set", action="append", default=[], metavar="KINTO_NAME=VALUE",
                    help="a setting of the server (docs/configuration.md), repeatable")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="kinto-callgrind-pages-")
    out = os.path.join(work, "callgrind.out")
    env = server_env(args.port, os.path.join(work, "data"))
    env.update(dict(kv.split("=", 1) for kv in args.set))
    first = f"/v1/buckets/big/collections/c/records?_limit={args.limit}"
    if args.query:
        first += "&" + args.query
    first = args.first or first
    try:
        proc = start(args.binary, env)
        try:
            wait_up(args.port, False)
            t0 = time.time()
            populate(http.client.HTTPConnection("127.0.0.1", args.port, timeout=600), args.records)
            populated = round(time.time() - t0, 1)
        finally:
            stop(proc)
        proc = start(args.binary, env, out)
        try:
            wait_up(args.port, False, deadline=300)
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=600)
            call(conn, "GET", first)  # warm-up: caches, connection
            subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
            if args.head:
                call(conn, "HEAD", first)
                pages, records = 1, 0
            else:
                pages, records = paginate(conn, first)
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
            # The measured part's dump, before the one written at exit.
            dumps = sorted(glob.glob(out + "*"), key=os.path.getmtime)
            ir = total_ir(dumps[-1])
            if args.keep:
                shutil.copy(dumps[-1], args.keep)
        finally:
            stop(proc)
        print(json.dumps({"binary": args.binary, "records": records, "pages": pages, "populate_s": populated,
                          "instructions": ir, "per_page": ir // pages, "per_record": ir // max(records, 1)}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
