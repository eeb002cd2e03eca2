#!/usr/bin/env python3
"""Side-by-side benchmark: the reference Kinto (PostgreSQL, gunicorn) and kinto-rs (embedded store) on the
same machine in one run, with one load generator (`kinto-load`, goose). Each server is pinned to CPU 0 and the
generator to CPU 1 (`taskset`).

    cargo build --release -p kinto -p kinto-loadtests
    python3 loadtests/bench.py --duration 30 --out target/bench

Runs, per server: the storage.sync mix at saturation, the mix again throttled to the reference's sustained
rate (p99 at equal load), remote-settings polling; then the minimal axum ceiling. For every run: requests/s,
p50/p95/p99/max, errors, the server's CPU time per request (all its processes: gunicorn workers and PostgreSQL
backends for the reference) and the generator's CPU use. Writes `<out>/results.json` and prints Markdown.
`--noisy-neighbour` instead measures 100 tenants' p99 while one floods a bucket, with admission limits on and
off (loadtests/noisy_neighbour.py). `--ceiling-rounds N` instead alternates the kinto-rs mix and both ceilings N times and reports the median
ratio (`<out>/ceiling-rounds.json`): one pair of runs moves by ±25% on a shared VM.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# cargo's target directory: `CARGO_TARGET_DIR` when set (relative to the repo).
REL = REPO / os.environ.get("CARGO_TARGET_DIR", "target") / "release"
TICK = os.sysconf("SC_CLK_TCK")
SERVER_CPU, LOAD_CPU = "0", "1"


def proc_cpu(pid):
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0.0


def pids(pattern):
    r = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [int(p) for p in r.stdout.split()]


class Cpu:
    """CPU seconds of a set of processes, found again at each reading (PostgreSQL forks backends)."""

    def __init__(self, *patterns):
        self.patterns = patterns

    def read(self):
        return sum(proc_cpu(p) for pat in self.patterns for p in pids(pat))


def wait_up(url, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/v1/__heartbeat__", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def percentile(hist, q):
    """From goose's {microseconds: count} histogram."""
    items = sorted((int(k), v) for k, v in hist.items())
    total = sum(v for _, v in items)
    if not total:
        return 0.0
    seen = 0
    for us, n in items:
        seen += n
        if seen >= q * total:
            return us / 1000.0
    return items[-1][0] / 1000.0


def run_goose(host, scenarios, duration, users, out, tag, throttle=None, env=None):
    report = out / f"{tag}.json"
    cmd = ["taskset", "-c", LOAD_CPU, str(REL / "kinto-load"), "--host", host, "--users", str(users),
           "--increase-rate", str(users), "--run-time", f"{duration}s", "--scenarios", scenarios,
           "--report-file", str(report), "--quiet", "--no-print-metrics"]
    if throttle:
        cmd += ["--throttle-requests", str(max(1, int(throttle)))]
    t0 = time.time()
    before = os.times()
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    after = os.times()
    if p.returncode != 0:
        raise SystemExit(f"kinto-load failed ({tag}): {p.stderr[-2000:]}")
    gen_cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return json.loads(report.read_text()), gen_cpu, time.time() - t0


def summarise(report, gen_cpu, server_cpu):
    rm = report["raw_metrics"]
    secs = max(rm["duration"], 1)
    ops, total, fails, hist = {}, 0, 0, {}
    for name, r in sorted(rm["requests"].items()):
        h = r["raw_data"]["times_us"]
        n = r["raw_data"]["counter"]
        total += n
        # Errors by status (goose also counts an unexpected 304 as a failure: a poll's 304 is the point).
        bad = sum(int(v) for c, v in r["status_code_counts"].items() if int(c) >= 400 or int(c) == 0)
        fails += bad
        for k, v in h.items():
            hist[k] = hist.get(k, 0) + v
        ops[name] = {"requests": n, "errors": bad, "rps": round(n / secs, 1),
                     "p50_ms": percentile(h, .5), "p95_ms": percentile(h, .95), "p99_ms": percentile(h, .99),
                     "max_ms": r["raw_data"]["maximum_time"], "status": r["status_code_counts"]}
    # kinto-load fails a redirected request (its status is the final one's): each would be two requests.
    fails += sum(e["occurrences"] for e in rm.get("errors", {}).values() if e["error"].startswith("redirected"))
    return {"seconds": secs, "requests": total, "errors": fails, "rps": round(total / secs, 1),
            "p50_ms": percentile(hist, .5), "p95_ms": percentile(hist, .95), "p99_ms": percentile(hist, .99),
            "server_cpu_s": round(server_cpu, 2),
            "server_cpu_ms_per_request": round(1000 * server_cpu / max(total, 1), 3),
            # What one core could serve at this CPU cost: the ceiling when the generator saturates first.
            "capacity_rps_per_core": round(total / max(server_cpu, 1e-9), 1),
            "generator_cpu_share": round(gen_cpu / secs, 2), "operations": ops}


def measure(name, host, cpu, scenarios, duration, users, out, throttle=None, env=None):
    c0 = cpu.read()
    report, gen_cpu, _ = run_goose(host, scenarios, duration, users, out, name, throttle, env)
    s = summarise(report, gen_cpu, cpu.read() - c0)
    print(f"  {name}: {s['rps']} req/s, p99 {s['p99_ms']} ms, errors {s['errors']}, "
          f"server CPU {s['server_cpu_ms_per_request']} ms/req, generator CPU {s['generator_cpu_share']}")
    return s


def start_ours(data_dir, port, binary=None, extra=None):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KINTO_")},
           "KINTO_BIND": f"127.0.0.1:{port}", "KINTO_DATA_DIR": str(data_dir),
           "KINTO_INCLUDES": "kinto.plugins.default_bucket", "KINTO_USERID_HMAC_SECRET": "load-test-secret",
           # Kinto's code defaults, not `kinto init`'s (the binary's own defaults: accounts only).
           "KINTO_MULTIAUTH_POLICIES": "basicauth", "KINTO_BUCKET_CREATE_PRINCIPALS": "system.Authenticated",
           "KINTO_DEFAULT_BUCKET_HMAC_SECRET": "",
           "KINTO_LOG_LEVEL": "warn", **(extra or {})}
    p = subprocess.Popen(["taskset", "-c", SERVER_CPU, str(binary or REL / "kinto")], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--users", type=int, default=32, help="goose users for the mix")
    ap.add_argument("--pollers", type=int, default=200)
    ap.add_argument("--out", default=str(REPO / "target" / "bench"))
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--cql", action="store_true",
                    help="also the mix on the Cassandra backend (tools/cassandra/start; node pinned with the server)")
    ap.add_argument("--kinto", default=None, help="the kinto-rs binary to measure (default: the release build)")
    ap.add_argument("--scale", default="", help="only the scale scenario, at these populations: 1000,1000000")
    ap.add_argument("--scale-rate", type=int, default=2000,
                    help="with --scale: a second run per population throttled to this many req/s (equal load)")
    ap.add_argument("--set", action="append", default=[], metavar="KINTO_NAME=VALUE",
                    help="a setting of the kinto-rs server, as its environment variable (docs/configuration.md)")
    ap.add_argument("--big-collection", type=int, default=0, metavar="N",
                    help="only list requests on one collection of N records, and /permissions (big_collection.py)")
    ap.add_argument("--big-rounds", type=int, default=3,
                    help="with --big-collection: rounds measuring both servers in turn (the ratio is their median)")
    ap.add_argument("--big-sql-fill", action="store_true",
                    help="with --big-collection: write the reference's records by SQL (big_collection.populate_sql), "
                         "not through its API; needed at 1,000,000 records")
    ap.add_argument("--big-skip-permissions", action="store_true",
                    help="with --big-collection: leave out GET /permissions (minutes a request on the reference "
                         "at 1,000,000 records)")
    ap.add_argument("--big-buckets", type=int, default=1000,
                    help="with --big-collection: buckets of another user around the measured user's")
    ap.add_argument("--permissions-scale", default="", metavar="N,M",
                    help="only `/permissions` of one user as the buckets of others grow to each population "
                         "(permissions_scale.py)")
    ap.add_argument("--permissions-writers", type=int, default=8,
                    help="with --permissions-scale: concurrent `/batch` writers filling kinto-rs")
    ap.add_argument("--ceiling-rounds", type=int, default=0,
                    help="only the mix against both ceilings, alternated this many times (median ratio)")
    ap.add_argument("--identity-rounds", type=int, default=0, metavar="N",
                    help="only the identity benchmark: N rounds of the mix with FxA JWTs vs Basic (identity_bench.py)")
    ap.add_argument("--noisy-neighbour", action="store_true",
                    help="only the noisy-neighbour runs (loadtests/noisy_neighbour.py)")
    ap.add_argument("--tenants", type=int, default=100, help="with --noisy-neighbour: tenants running the mix")
    ap.add_argument("--tenants-rate", type=int, default=300,
                    help="with --noisy-neighbour: the tenants' requests/s together")
    ap.add_argument("--flooders", type=int, default=32, help="with --noisy-neighbour: goose users of the flood")
    ap.add_argument("--flood-user-rate", type=int, default=50,
                    help="with --noisy-neighbour: `ratelimit_user_per_second` when limits are on")
    ap.add_argument("--bin-dir", default=None,
                    help="with --noisy-neighbour: where kinto and kinto-load are (default: the release build)")
    args = ap.parse_args()
    for kv in args.set:
        if "=" not in kv or not kv.startswith("KINTO_"):
            ap.error(f"--set takes KINTO_NAME=VALUE, not {kv!r}")
    args.settings = dict(kv.split("=", 1) for kv in args.set)
    if args.scale:
        return scale(args)
    if args.ceiling_rounds:
        return ceiling_rounds(args)
    if args.identity_rounds:
        import identity_bench

        return identity_bench.run(args)
    if args.noisy_neighbour:
        import noisy_neighbour

        return noisy_neighbour.run(args)
    if args.big_collection:
        return big_collection(args)
    if args.permissions_scale:
        return permissions_scale(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"machine": {"cpus": os.cpu_count(), "server_cpu": SERVER_CPU, "generator_cpu": LOAD_CPU},
               "duration_s": args.duration, "users": args.users, "kinto_rs_settings": args.settings}

    ref_url = "http://127.0.0.1:8890"
    if not args.skip_reference:
        print("reference Kinto 26.5 on PostgreSQL (gunicorn, 2 workers), pinned to CPU", SERVER_CPU)
        subprocess.run([str(REPO / "loadtests/reference/stop")], capture_output=True)
        subprocess.run([str(REPO / "loadtests/reference/start")], check=True,
                       env={**os.environ, "KINTO_REF_CPUS": SERVER_CPU, "KINTO_REF_WORKERS": "2"})
        wait_up(ref_url)
        cpu = Cpu("gunicorn", "postgres")
        ref = results["reference"] = {}
        ref["mix"] = measure("ref-mix", ref_url, cpu, "storagesync", args.duration, args.users, out)
        ref["polling"] = measure("ref-polling", ref_url, cpu, "polling,publisher", args.duration, args.pollers, out)
        subprocess.run([str(REPO / "loadtests/reference/stop")], capture_output=True)

    print("kinto-rs (embedded store, periodic fsync 1 s), pinned to CPU", SERVER_CPU)
    data = Path(tempfile.mkdtemp(prefix="kinto-rs-bench-"))
    ours_url = "http://127.0.0.1:8891"
    binary = Path(args.kinto).resolve() if args.kinto else REL / "kinto"
    proc = start_ours(data, 8891, binary, args.settings)
    try:
        wait_up(ours_url)
        cpu = Cpu(str(binary) + "$")
        o = results["kinto_rs"] = {}
        o["mix"] = measure("ours-mix", ours_url, cpu, "storagesync", args.duration, args.users, out)
        if "reference" in results:
            rate = results["reference"]["mix"]["rps"]
            o["mix_at_reference_rate"] = measure("ours-mix-at-ref-rate", ours_url, cpu, "storagesync",
                                                 args.duration, args.users, out, throttle=rate)
        o["polling"] = measure("ours-polling", ours_url, cpu, "polling,publisher", args.duration, args.pollers, out)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(data, ignore_errors=True)

    if args.cql:
        results["kinto_rs_cql"] = {"mix": measure_cql(args, out)}

    print("ceiling: minimal axum JSON handler, pinned to CPU", SERVER_CPU)
    ceil = subprocess.Popen(["taskset", "-c", SERVER_CPU, str(REL / "kinto-ceiling"), "--bind", "127.0.0.1:8899"],
                            stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        results["ceiling"] = measure("ceiling", "http://127.0.0.1:8899", Cpu(str(REL / "kinto-ceiling")),
                                     "ceiling", args.duration, args.users, out)
        # The mix's own request stream (a /batch of 25 answered with 25 sub-responses), HTTP and JSON only.
        results["ceiling_mix"] = measure("ceiling-mix", "http://127.0.0.1:8899", Cpu(str(REL / "kinto-ceiling")),
                                         "storagesync", args.duration, args.users, out)
    finally:
        ceil.terminate()
        ceil.wait(10)

    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(table(results))


def measure_cql(args, out):
    """The mix on the CQL backend: a fresh keyspace on a local Cassandra node whose JVM shares the server's CPU
    (as PostgreSQL does for the reference); CPU per request counts `kinto` and the JVM."""
    print("kinto-rs on Cassandra 5.0 (LOCAL_QUORUM, RF 1, commit log periodic 10 s), pinned to CPU", SERVER_CPU)
    # A node this run starts is stopped after it: left running, pinned to the server's CPU, it took that
    # core's time from the ceiling measured next.
    started = not pids("CassandraDaemon")
    subprocess.run([str(REPO / "tools/cassandra/start")], check=True, stdout=subprocess.DEVNULL)
    for pid in pids("CassandraDaemon"):
        subprocess.run(["taskset", "-a", "-cp", SERVER_CPU, str(pid)], check=True, stdout=subprocess.DEVNULL)
    keyspace = f"bench_{os.getpid()}_{int(time.time())}"
    # tools/cassandra's login (its logins and permissions are on since 2026-12-07; runs before had neither).
    cql = {"KINTO_STORAGE_BACKEND": "cql", "KINTO_CQL_KEYSPACE": keyspace,
           "KINTO_CQL_USERNAME": "cassandra", "KINTO_CQL_PASSWORD": "cassandra"}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KINTO_")}, **cql}
    subprocess.run([str(REL / "kinto-shard"), "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    data = Path(tempfile.mkdtemp(prefix="kinto-rs-bench-"))
    url = "http://127.0.0.1:8892"
    binary = Path(args.kinto).resolve() if args.kinto else REL / "kinto"
    proc = start_ours(data, 8892, binary, {**args.settings, **cql})
    try:
        wait_up(url)
        return measure("ours-cql-mix", url, Cpu(str(binary) + "$", "CassandraDaemon"), "storagesync",
                       args.duration, args.users, out)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(data, ignore_errors=True)
        if started:
            subprocess.run([str(REPO / "tools/cassandra/stop")], stdout=subprocess.DEVNULL)


def ceiling_rounds(args):
    """kinto-rs only: `--ceiling-rounds N` alternations of the mix on kinto-rs (fresh data directory) and the
    two ceilings, so each ratio compares runs a minute apart on this noisy VM; the median ratio is reported."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    binary = Path(args.kinto).resolve() if args.kinto else REL / "kinto"
    rounds = []
    for i in range(args.ceiling_rounds):
        data = Path(tempfile.mkdtemp(prefix="kinto-rs-bench-"))
        url = "http://127.0.0.1:8891"
        proc = start_ours(data, 8891, binary, args.settings)
        try:
            wait_up(url)
            mix = measure(f"ours-mix-{i}", url, Cpu(str(binary) + "$"), "storagesync", args.duration,
                          args.users, out)
        finally:
            proc.terminate()
            proc.wait(10)
            shutil.rmtree(data, ignore_errors=True)
        ceil = subprocess.Popen(["taskset", "-c", SERVER_CPU, str(REL / "kinto-ceiling"), "--bind",
                                 "127.0.0.1:8899"], stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            cpu = Cpu(str(REL / "kinto-ceiling"))
            one = measure(f"ceiling-{i}", "http://127.0.0.1:8899", cpu, "ceiling", args.duration, args.users, out)
            same = measure(f"ceiling-mix-{i}", "http://127.0.0.1:8899", cpu, "storagesync", args.duration,
                           args.users, out)
        finally:
            ceil.terminate()
            ceil.wait(10)

        def ratios(c):
            return {"measured_pct": round(100 * mix["rps"] / max(c["rps"], 1e-9), 1),
                    "by_cpu_pct": round(100 * c["server_cpu_ms_per_request"]
                                        / max(mix["server_cpu_ms_per_request"], 1e-9), 1)}
        rounds.append({"mix": mix, "ceiling": one, "ceiling_mix": same,
                       "vs_ceiling": ratios(one), "vs_ceiling_mix": ratios(same)})
    summary = {k: {m: statistics.median(r[k][m] for r in rounds) for m in ("measured_pct", "by_cpu_pct")}
               for k in ("vs_ceiling", "vs_ceiling_mix")}
    (out / "ceiling-rounds.json").write_text(json.dumps({"rounds": rounds, "median": summary, "kinto_rs_settings": args.settings}, indent=2))
    print("| round | mix req/s | mix CPU ms/req | ceiling req/s | CPU ms/req | mix-shaped ceiling req/s | CPU ms/req |"
          " vs ceiling (measured / by CPU) | vs mix-shaped ceiling (measured / by CPU) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for i, r in enumerate(rounds):
        m, c, s, a, b = r["mix"], r["ceiling"], r["ceiling_mix"], r["vs_ceiling"], r["vs_ceiling_mix"]
        print(f"| {i + 1} | {m['rps']} | {m['server_cpu_ms_per_request']} | {c['rps']} | "
              f"{c['server_cpu_ms_per_request']} | {s['rps']} | {s['server_cpu_ms_per_request']} | "
              f"{a['measured_pct']}% / {a['by_cpu_pct']}% | {b['measured_pct']}% / {b['by_cpu_pct']}% |")
    a, b = summary["vs_ceiling"], summary["vs_ceiling_mix"]
    print(f"- median: vs ceiling {a['measured_pct']}% measured, {a['by_cpu_pct']}% by CPU per request; "
          f"vs the mix-shaped ceiling {b['measured_pct']}% measured, {b['by_cpu_pct']}% by CPU per request")


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def settle(cpu, idle_share=0.05, window=2.0, timeout=180):
    """Waits until the server is idle (its store's flushes and compactions after a bulk load are done), so a
    measurement starts in the steady state and does not pay for the population's tail; returns the wait in s."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        c0 = cpu.read()
        time.sleep(window)
        if (cpu.read() - c0) / window < idle_share:
            break
    return round(time.time() - t0, 1)


def scale(args):
    """kinto-rs only: populate N users (default bucket, one collection, 3 records each), then the scale scenario;
    p99 and resident memory per population."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    binary = Path(args.kinto).resolve() if args.kinto else REL / "kinto"
    for n in [int(x) for x in args.scale.split(",")]:
        data = Path(tempfile.mkdtemp(prefix=f"kinto-rs-scale-{n}-"))
        url = "http://127.0.0.1:8891"
        proc = start_ours(data, 8891, binary, args.settings)
        try:
            wait_up(url)
            t0 = time.time()
            subprocess.run(["taskset", "-c", LOAD_CPU, str(REL / "kinto-populate"), "--host", url, "--users", str(n),
                            "--records", "3", "--concurrency", "32"], check=True)
            populate_s = time.time() - t0
            cpu = Cpu(str(binary) + "$")
            settle_s = settle(cpu)
            print(f"  population {n}: server idle {settle_s} s after populating")
            s = measure(f"scale-{n}", url, cpu, "scale", args.duration, args.users, out,
                        env={"KINTO_LOAD_POPULATION": str(n)})
            # Saturated runs compare queues; at one fixed rate below saturation p99 compares the service itself.
            s["at_rate"] = measure(f"scale-{n}-at-{args.scale_rate}", url, cpu, "scale", args.duration, args.users,
                                   out, throttle=args.scale_rate, env={"KINTO_LOAD_POPULATION": str(n)})
            s["population"] = n
            s["settings"] = args.settings
            s["populate_seconds"] = round(populate_s, 1)
            s["settle_seconds"] = settle_s
            s["rss_mb"] = round(rss_mb(proc.pid), 1)
            s["data_dir_mb"] = round(sum(f.stat().st_size for f in data.rglob("*") if f.is_file()) / 2**20, 1)
            print(f"  population {n}: populated in {populate_s:.0f} s, RSS {s['rss_mb']} MB, "
                  f"store {s['data_dir_mb']} MB")
            results[str(n)] = s
        finally:
            proc.terminate()
            proc.wait(30)
            shutil.rmtree(data, ignore_errors=True)
    (out / "scale.json").write_text(json.dumps(results, indent=2))
    for n, s in results.items():
        a = s["at_rate"]
        print(f"| {n} users | {s['rps']} req/s | p50 {s['p50_ms']} ms | p99 {s['p99_ms']} ms | RSS {s['rss_mb']} MB | "
              f"at {a['rps']} req/s: p50 {a['p50_ms']} ms, p99 {a['p99_ms']} ms |")


def big_collection(args):
    """The reference and kinto-rs, each populated with the same collection and buckets, then measured in
    turns (`--big-rounds`, big_collection.py): a shared VM's speed drifts by tens of percent over the minutes
    one side takes, so each round measures both, and the ratio reported is the median of the rounds' ratios."""
    import big_collection as big
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n, buckets = args.big_collection, args.big_buckets
    big.PERMISSIONS = not args.big_skip_permissions
    servers, populated, proc = {}, {}, None
    data = Path(tempfile.mkdtemp(prefix="kinto-rs-big-"))
    try:
        if not args.skip_reference:
            print(f"reference Kinto 26.5 on PostgreSQL: {n} records, {buckets} buckets")
            subprocess.run([str(REPO / "loadtests/reference/stop")], capture_output=True)
            # Kinto reads `KINTO_<SETTING>` from its environment over its ini.
            subprocess.run([str(REPO / "loadtests/reference/start")], check=True,
                           env={**os.environ, "KINTO_REF_CPUS": SERVER_CPU, "KINTO_REF_WORKERS": "2",
                                "KINTO_EXPERIMENTAL_PERMISSIONS_ENDPOINT": "true"})
            servers["reference"] = "http://127.0.0.1:8890"
            wait_up(servers["reference"])
            if args.big_sql_fill:
                psql = ["psql", "-h", "127.0.0.1", "-p", os.environ.get("KINTO_REF_PG_PORT", "5437"),
                        "-U", "postgres", "kinto"]
                populated["reference"] = big.populate_sql(servers["reference"], n, buckets, psql)
            else:
                populated["reference"] = big.populate(servers["reference"], n, buckets)
        print(f"kinto-rs (embedded store): {n} records, {buckets} buckets")
        binary = Path(args.kinto).resolve() if args.kinto else REL / "kinto"
        settings = {"KINTO_EXPERIMENTAL_PERMISSIONS_ENDPOINT": "true", **args.settings}
        proc = start_ours(data, 8891, binary, settings)
        servers["kinto_rs"] = "http://127.0.0.1:8891"
        wait_up(servers["kinto_rs"])
        populated["kinto_rs"] = big.populate(servers["kinto_rs"], n, buckets)
        # The store flushes and compacts what the fill wrote on background threads, on the server's CPU: measured
        # at rest, as the reference is after its fill's VACUUM.
        from page_cost import wait_idle
        idle_wait = wait_idle(proc.pid, 10)
        rounds = []
        # This process is the client: on the other CPU, it never takes the server's.
        os.sched_setaffinity(0, {int(LOAD_CPU)})
        quiet_waits = []
        for i in range(args.big_rounds):
            print(f"round {i + 1} of {args.big_rounds}")
            rounds.append({})
            quiet_waits.append({})
            for name, base in servers.items():
                # Each server is measured with the machine at rest: not while the other still works off its fill.
                quiet_waits[-1][name] = big.wait_quiet()
                rounds[-1][name] = big.measure(base, n)
        results = {name: {"records": n, "buckets": buckets, "populate_seconds": populated[name],
                          **{k: round(statistics.median(r[name][k] for r in rounds), 3) for k in rounds[0][name]}}
                   for name in servers}
        results["kinto_rs"]["rss_mb"] = round(rss_mb(proc.pid), 1)
        results["kinto_rs"]["idle_wait_seconds"] = idle_wait
        # What `--set` changed, so a run with a setting turned off reads as such.
        results["kinto_rs"]["settings"] = args.settings
        results["rounds"] = rounds
        results["quiet_wait_seconds"] = quiet_waits
        if "reference" in servers:
            results["ratio"] = {k: round(statistics.median(r["reference"][k] / r["kinto_rs"][k] for r in rounds), 1)
                                for k in rounds[0]["kinto_rs"] if all(r["kinto_rs"][k] for r in rounds)}
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(data, ignore_errors=True)
        if "reference" in servers:
            subprocess.run([str(REPO / "loadtests/reference/stop")], capture_output=True)
    (out / f"big-collection-{n}.json").write_text(json.dumps(results, indent=2))
    print(big.table(results))


def permissions_scale(args):
    """`/permissions` as the deployment grows, the reference then kinto-rs (permissions_scale.py)."""
    import permissions_scale as ps
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    populations = [int(n) for n in args.permissions_scale.split(",") if n.strip()]
    results = {}
    settings = {"KINTO_EXPERIMENTAL_PERMISSIONS_ENDPOINT": "true"}
    if not args.skip_reference:
        print(f"reference Kinto 26.5 on PostgreSQL: /permissions at {populations} buckets")
        subprocess.run([str(REPO / "loadtests/reference/stop")], capture_output=True)
        subprocess.run([str(REPO / "loadtests/reference/start")], check=True,
                       env={**os.environ, "KINTO_REF_CPUS": SERVER_CPU, "KINTO_REF_WORKERS": "2", **settings})
        try:
            wait_up("http://127.0.0.1:8890")
            results["reference"] = ps.run("http://127.0.0.1:8890", populations, 1)
        finally:
            subprocess.run([str(REPO / "loadtests/reference/stop")], capture_output=True)
    print(f"kinto-rs (embedded store): /permissions at {populations} buckets")
    data = Path(tempfile.mkdtemp(prefix="kinto-rs-perms-"))
    binary = Path(args.kinto).resolve() if args.kinto else REL / "kinto"
    proc = start_ours(data, 8891, binary, {**settings, **args.settings})
    try:
        wait_up("http://127.0.0.1:8891")
        from page_cost import wait_idle
        results["kinto_rs"] = ps.run("http://127.0.0.1:8891", populations, args.permissions_writers,
                                     settle=lambda: wait_idle(proc.pid))
        results["kinto_rs_rss_mb"] = round(rss_mb(proc.pid), 1)
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(data, ignore_errors=True)
    (out / "permissions-scale.json").write_text(json.dumps(results, indent=2))
    print(ps.table(results))


def table(r):
    rows = ["| run | req/s | p50 ms | p99 ms | errors | server CPU ms/req | generator CPU |",
            "|---|---|---|---|---|---|---|"]
    for side in ("reference", "kinto_rs", "kinto_rs_cql"):
        for k, s in r.get(side, {}).items():
            rows.append(f"| {side} {k} | {s['rps']} | {s['p50_ms']} | {s['p99_ms']} | {s['errors']} | "
                        f"{s['server_cpu_ms_per_request']} | {s['generator_cpu_share']} |")
    for key, label in (("ceiling", "ceiling (axum echo of one record)"),
                       ("ceiling_mix", "ceiling (axum echo of the mix's requests)")):
        if key in r:
            s = r[key]
            rows.append(f"| {label} | {s['rps']} | {s['p50_ms']} | {s['p99_ms']} | {s['errors']} | "
                        f"{s['server_cpu_ms_per_request']} | {s['generator_cpu_share']} |")
    if "reference" in r and "kinto_rs" in r:
        ref, ours = r["reference"], r["kinto_rs"]
        rows.append("")
        rows.append(f"- mix throughput ratio (ours / reference): {ours['mix']['rps'] / max(ref['mix']['rps'], 1e-9):.1f}x")
        if "mix_at_reference_rate" in ours:
            rows.append(f"- p99 at the reference's rate: ours {ours['mix_at_reference_rate']['p99_ms']} ms vs "
                        f"reference {ref['mix']['p99_ms']} ms")
        rows.append(f"- CPU per request ratio (reference / ours): "
                    f"{ref['mix']['server_cpu_ms_per_request'] / max(ours['mix']['server_cpu_ms_per_request'], 1e-9):.1f}x")

        def not_modified(s):
            return sum(int(v) for op in s["operations"].values() for c, v in op["status"].items() if c == "304") \
                / max(s["seconds"], 1)
        rows.append(f"- 304 answers/s: ours {not_modified(ours['polling']):.0f} vs reference "
                    f"{not_modified(ref['polling']):.0f}")
    if "reference" in r and "kinto_rs_cql" in r:
        ref, cql = r["reference"]["mix"], r["kinto_rs_cql"]["mix"]
        rows.append(f"- Cassandra backend, mix throughput ratio (ours / reference): "
                    f"{cql['rps'] / max(ref['rps'], 1e-9):.1f}x; CPU per request ratio (reference / ours, JVM included): "
                    f"{ref['server_cpu_ms_per_request'] / max(cql['server_cpu_ms_per_request'], 1e-9):.1f}x")
    if "ceiling" in r and "kinto_rs" in r:
        mix, ceil = r["kinto_rs"]["mix"], r["ceiling"]
        rows.append(f"- mix vs ceiling, measured rates: {100 * mix['rps'] / max(ceil['rps'], 1e-9):.1f}%; by CPU per "
                    f"request (the generator saturates first on the ceiling): "
                    f"{100 * ceil['server_cpu_ms_per_request'] / max(mix['server_cpu_ms_per_request'], 1e-9):.1f}%")
    if "ceiling_mix" in r and "kinto_rs" in r:
        mix, ceil = r["kinto_rs"]["mix"], r["ceiling_mix"]
        rows.append(f"- mix vs the ceiling answering the same mix, measured rates: "
                    f"{100 * mix['rps'] / max(ceil['rps'], 1e-9):.1f}%; by CPU per request: "
                    f"{100 * ceil['server_cpu_ms_per_request'] / max(mix['server_cpu_ms_per_request'], 1e-9):.1f}%")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
