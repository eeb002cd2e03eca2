"""`bench.py --big-collection N`: list requests on one collection of N records (issue 21), and `/permissions`
of a user among many buckets, on the reference Kinto and on kinto-rs in the same run.

Per server: populate (records through `/batch`, 25 a request, one at a time), then time each request
several times and keep the median (bench.py measures the two servers in turns, several rounds): the first page with the default sort, with `_sort=-last_modified`, with
a filter; a full pagination with `_limit=1000`; `_since=<recent>`; and `GET /permissions` of a user owning
a few buckets among `--big-buckets` buckets of another user.
"""

import base64
import http.client
import json
import statistics
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

CHANNELS = ("release", "beta", "nightly", "aurora")
BATCH = 25
# Samples per timed request, of which the median is kept: a shared VM stalls now and then for a few requests.
REPEAT = 25
# A collection of its own per run: the reference's database outlives a run.
COLLECTION = f"c{int(time.time())}"
# Whether to time `GET /permissions` too (bench.py `--big-skip-permissions`): the reference lists every record
# the user wrote, minutes each at 1,000,000; `bench.py --permissions-scale` measures it on its own.
PERMISSIONS = True


def auth(user):
    return "Basic " + base64.b64encode(f"{user}:{user}-secret".encode()).decode()


def call(url, method="GET", body=None, user="bench", timeout=600):
    """(status, headers, decoded body, seconds)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Authorization": auth(user), "Content-Type": "application/json"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            status, headers = r.status, {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as e:
        raw, status, headers = e.read(), e.code, {k.lower(): v for k, v in e.headers.items()}
    elapsed = time.perf_counter() - t0
    return status, headers, (json.loads(raw) if raw else None), elapsed


class KeepAlive:
    """One connection kept open across requests, as kinto-http.py's `requests.Session` and browsers keep theirs:
    timing without a new TCP connection and urllib's set-up per request, the floor `call` adds to both servers."""

    def __init__(self, base):
        parts = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)

    def call(self, url, user="bench"):
        parts = urllib.parse.urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        t0 = time.perf_counter()
        self.conn.request("GET", path, headers={"Authorization": auth(user)})
        r = self.conn.getresponse()
        raw = r.read()
        elapsed = time.perf_counter() - t0
        headers = {k.lower(): v for k, v in r.getheaders()}
        return r.status, headers, (json.loads(raw) if raw else None), elapsed

    def close(self):
        self.conn.close()


def batch(base, requests, user):
    status, _, body, _ = call(f"{base}/v1/batch", "POST", {"requests": requests}, user)
    failed = [r for r in (body or {}).get("responses", []) if r["status"] >= 400]
    if status != 200 or failed:
        raise SystemExit(f"batch failed: {status} {str(failed or body)[:400]}")


def populate(base, n, buckets):
    """One `/batch` at a time: Kinto on PostgreSQL refuses concurrent writes to one list (409, and the
    whole batch rolled back). Collection `/buckets/big/collections/<COLLECTION>` of `n` records; `buckets` buckets of user `other` and three of
    `bench`. Returns the seconds it took."""
    t0 = time.time()
    call(f"{base}/v1/buckets/big", "PUT", {})
    call(f"{base}/v1/buckets/big/collections/{COLLECTION}", "PUT", {})
    path = f"/buckets/big/collections/{COLLECTION}/records"

    def records(start):
        return [{"method": "POST", "path": path,
                 "body": {"data": {"build": {"channel": CHANNELS[i % len(CHANNELS)], "number": i}}}}
                for i in range(start, min(start + BATCH, n))]

    def other_buckets(start):
        return [{"method": "PUT", "path": f"/buckets/other-{i}", "body": {}}
                for i in range(start, min(start + BATCH, buckets))]

    for start in range(0, n, BATCH):
        batch(base, records(start), "bench")
    for start in range(0, buckets, BATCH):
        batch(base, other_buckets(start), "other")
    for i in range(3):
        call(f"{base}/v1/buckets/mine-{i}", "PUT", {})
    return round(time.time() - t0, 1)


def populate_sql(base, n, buckets, psql):
    """The reference only: the same bucket, collection and buckets as `populate`, but the records written by one
    SQL statement into Kinto's PostgreSQL schema, as its storage backend writes them (`data` without `id` and
    `last_modified`, a UUID4 id, a `last_modified` 1 ms after the previous one, and the creator's `write` ACE).
    Writing 1,000,000 records through the API, one `/batch` at a time, takes the reference about 90 minutes; the
    requests measured only read. Earlier runs' objects are deleted first, so the reference holds what we hold.
    `psql` is the command line to its database. Returns the seconds it took."""
    t0 = time.time()
    wipe = ("DELETE FROM objects; DELETE FROM access_control_entries; DELETE FROM timestamps; "
            "VACUUM ANALYZE objects; VACUUM ANALYZE access_control_entries;")
    subprocess.run(psql + ["-q", "-v", "ON_ERROR_STOP=1"], input=wipe, text=True, check=True)
    call(f"{base}/v1/buckets/big", "PUT", {})
    call(f"{base}/v1/buckets/big/collections/{COLLECTION}", "PUT", {})
    _, _, body, _ = call(f"{base}/v1/")
    principal = body["user"]["id"]
    parent = f"/buckets/big/collections/{COLLECTION}"
    channels = ",".join(f"'{c}'" for c in CHANNELS)
    fill = f"""
        BEGIN;
        CREATE TEMP TABLE fill AS
          SELECT gen_random_uuid()::text AS id, i,
                 as_epoch(now()::timestamp) - {n} + i AS ms
            FROM generate_series(0, {n - 1}) AS i;
        -- Each row carries its own timestamp, later than the one before, which the trigger would keep: off
        -- for this statement, where it costs a query per row.
        ALTER TABLE objects DISABLE TRIGGER tgr_objects_last_modified;
        INSERT INTO objects (id, parent_id, resource_name, last_modified, data, deleted)
          SELECT id, '{parent}', 'record', from_epoch(ms),
                 jsonb_build_object('build', jsonb_build_object(
                   'channel', (ARRAY[{channels}])[i % {len(CHANNELS)} + 1], 'number', i)),
                 FALSE
            FROM fill ORDER BY i;
        ALTER TABLE objects ENABLE TRIGGER tgr_objects_last_modified;
        INSERT INTO access_control_entries (object_id, permission, principal)
          SELECT '{parent}/records/' || id, 'write', '{principal}' FROM fill;
        COMMIT;
        VACUUM ANALYZE objects;
        VACUUM ANALYZE access_control_entries;
        -- What the fill dirtied is written now, not by a checkpoint spread over the minutes being measured.
        CHECKPOINT;
    """
    subprocess.run(psql + ["-q", "-v", "ON_ERROR_STOP=1"], input=fill, text=True, check=True)

    def other_buckets(start):
        return [{"method": "PUT", "path": f"/buckets/other-{i}", "body": {}}
                for i in range(start, min(start + BATCH, buckets))]

    for start in range(0, buckets, BATCH):
        batch(base, other_buckets(start), "other")
    for i in range(3):
        call(f"{base}/v1/buckets/mine-{i}", "PUT", {})
    return round(time.time() - t0, 1)


def busy_ticks():
    """CPU time the whole machine has spent busy (user, system, interrupts, steal), in clock ticks."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq + steal


def wait_quiet(quiet_seconds=3, deadline=600, ticks_per_second=5):
    """Waits until the whole machine has been busy under 5% of one CPU (at 100 ticks a second) for `quiet_seconds`
    in a row: whatever a server still does after its fill (PostgreSQL's checkpoints and autovacuum, the store's
    compactions) runs on the same two CPUs as the other server and the client. Returns the seconds waited."""
    t0, quiet, last = time.time(), 0, busy_ticks()
    while quiet < quiet_seconds and time.time() - t0 < deadline:
        time.sleep(1)
        now = busy_ticks()
        quiet = quiet + 1 if now - last <= ticks_per_second else 0
        last = now
    return round(time.time() - t0, 1)


def median_ms(url, user="bench", client=None):
    times = []
    for _ in range(REPEAT):
        status, _, _, s = (client.call if client else call)(url, user=user)
        if status != 200:
            raise SystemExit(f"{url}: {status}")
        times.append(s)
    return round(1000 * statistics.median(times), 2)


def paginate(url, client=None):
    """Seconds to follow `Next-Page` from `url` to the end, the part of them spent waiting for the server
    (request sent to body read, without this client's JSON decoding, which costs both servers the same), and
    the records seen."""
    t0, waited, seen = time.perf_counter(), 0.0, 0
    while url:
        status, headers, body, elapsed = (client.call if client else call)(url)
        if status != 200:
            raise SystemExit(f"{url}: {status}")
        waited += elapsed
        seen += len(body["data"])
        url = headers.get("next-page")
    return round(time.perf_counter() - t0, 3), round(waited, 3), seen


def measure(base, n):
    records = f"{base}/v1/buckets/big/collections/{COLLECTION}/records"
    _, _, body, _ = call(f"{records}?_limit=10")
    recent = body["data"][-1]["last_modified"]
    r = {
        "first_page_ms": median_ms(f"{records}?_limit=10"),
        "first_page_sorted_ms": median_ms(f"{records}?_limit=10&_sort=-last_modified"),
        "first_page_filtered_ms": median_ms(f"{records}?_limit=10&build.channel=beta"),
        "since_recent_ms": median_ms(f"{records}?_since={recent}"),
    }
    if PERMISSIONS:
        r["permissions_ms"] = median_ms(f"{base}/v1/permissions")
    r["paginate_s"], r["paginate_server_s"], seen = paginate(f"{records}?_limit=1000")
    if seen != n:
        raise SystemExit(f"full pagination saw {seen} records of {n}")
    # The same requests on one kept-alive connection.
    client = KeepAlive(base)
    try:
        r["first_page_keepalive_ms"] = median_ms(f"{records}?_limit=10", client=client)
        r["first_page_filtered_keepalive_ms"] = median_ms(f"{records}?_limit=10&build.channel=beta", client=client)
        r["paginate_keepalive_s"], r["paginate_server_keepalive_s"], seen = paginate(f"{records}?_limit=1000",
                                                                                      client)
    finally:
        client.close()
    return r


def table(results):
    keys = [("first_page_ms", "first page, default sort (ms)"),
            ("first_page_sorted_ms", "first page, `_sort=-last_modified` (ms)"),
            ("first_page_filtered_ms", "first page, `build.channel=beta` (ms)"),
            ("paginate_s", "full pagination, `_limit=1000` (s)"),
            ("paginate_server_s", "of which waiting for the server (s)"),
            ("since_recent_ms", "`_since=<recent>` (ms)"),
            ("first_page_keepalive_ms", "first page, one kept-alive connection (ms)"),
            ("first_page_filtered_keepalive_ms", "first page, `build.channel=beta`, kept-alive (ms)"),
            ("paginate_keepalive_s", "full pagination, kept-alive (s)"),
            ("paginate_server_keepalive_s", "of which waiting for the server, kept-alive (s)"),
            ("permissions_ms", "`/permissions` (ms)")]
    sides = [s for s in ("reference", "kinto_rs", "ratio") if s in results]
    rows = ["| request | " + " | ".join(sides) + " |", "|---" * (len(sides) + 1) + "|"]
    for k, label in keys:
        rows.append(f"| {label} | " + " | ".join(str(results[s].get(k, "-")) for s in sides) + " |")
    return "\n".join(rows)
