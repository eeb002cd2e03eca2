"""`bench.py --permissions-scale 1000,1000000`: the time of `GET /permissions` for one user owning a few
buckets, while the deployment grows to each population of buckets owned by others (issue 21's acceptance:
the same time at 1,000,000 buckets as at 1,000, within 1.5×). One server per side, grown in place: the
populations are reached in increasing order and measured in between.

Buckets are created through `/batch`, 25 a request; kinto-rs takes `--permissions-writers` batches at once,
the reference one at a time (Kinto on PostgreSQL refuses concurrent writes to one list).
"""

import concurrent.futures
import time

from big_collection import BATCH, batch, call, median_ms

GOAL_RATIO = 1.5


def grow(base, start, end, writers):
    """Buckets `other-<start>` … `other-<end - 1>` of user `other`. Returns the seconds it took."""
    t0 = time.time()
    chunks = [[{"method": "PUT", "path": f"/buckets/other-{i}", "body": {}}
               for i in range(s, min(s + BATCH, end))] for s in range(start, end, BATCH)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=writers) as pool:
        for f in [pool.submit(batch, base, c, "other") for c in chunks]:
            f.result()
    return round(time.time() - t0, 1)


def run(base, populations, writers, settle=None):
    """`{population: {"permissions_ms", "entries", "grow_seconds"}}` for one server. `settle()`, if given, waits
    until the server's background work after a growth (flushes, compactions) is done, before measuring."""
    for i in range(3):
        status, _, _, _ = call(f"{base}/v1/buckets/mine-{i}", "PUT", {})
        if status not in (200, 201):
            raise SystemExit(f"PUT /buckets/mine-{i}: {status}")
    out, have = {}, 0
    for n in sorted(populations):
        grown = grow(base, have, n, writers)
        have = max(have, n)
        if settle:
            settle()
        status, _, body, _ = call(f"{base}/v1/permissions")
        if status != 200:
            raise SystemExit(f"/permissions: {status}")
        out[n] = {"permissions_ms": median_ms(f"{base}/v1/permissions"), "entries": len(body["data"]),
                  "grow_seconds": grown}
    return out


def ratio(side):
    """Slowest over fastest population's time: the acceptance asks ≤ GOAL_RATIO."""
    times = [r["permissions_ms"] for r in side.values()]
    return round(max(times) / max(min(times), 0.001), 2)


def table(results):
    sides = [s for s in ("reference", "kinto_rs") if s in results]
    pops = sorted({n for s in sides for n in results[s]})
    rows = ["| buckets | " + " | ".join(f"{s} `/permissions` (ms)" for s in sides) + " |",
            "|---" * (len(sides) + 1) + "|"]
    for n in pops:
        rows.append(f"| {n} | " + " | ".join(str(results[s].get(n, {}).get("permissions_ms", "")) for s in sides)
                    + " |")
    rows.append("| largest / smallest | " + " | ".join(f"{ratio(results[s])}× (goal ≤ {GOAL_RATIO}×)"
                                                      for s in sides) + " |")
    return "\n".join(rows)
