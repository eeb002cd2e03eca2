"""The noisy-neighbour benchmark (`bench.py --noisy-neighbour`, issue 18): 100 tenants run the storage.sync mix at
a steady rate while one tenant floods one bucket; the others' p99 and error rate are compared across three runs
of kinto-rs (a fresh store each):

- `baseline`: no flood (admission limits off);
- `flood_limits_off`: the flood, with every admission limit off;
- `flood_limits_on`: the flood, with a per-user rate and a per-bucket concurrency cap.

Goal: with limits on, the others' p99 within 2x of the baseline's and their error rate zero. Writes
`<out>/noisy-neighbour.json` and prints a summary. Smoke it on a debug build with `--bin-dir target/debug
--duration 5`; measure on the release build.
"""

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import bench

# Far above any load here: "off" means no admission limit at all.
LIMITS_OFF = {
    "KINTO_SHARD_MAX_CONCURRENCY": "1000000", "KINTO_SHARD_MAX_QUEUE": "1000000",
    "KINTO_SHARD_BUCKET_MAX_CONCURRENCY": "1000000", "KINTO_SHARD_BUCKET_MAX_QUEUE": "1000000",
}


def limits_on(args):
    return {
        "KINTO_RATELIMIT_USER_PER_SECOND": str(args.flood_user_rate),
        "KINTO_RATELIMIT_USER_BURST": str(2 * args.flood_user_rate),
        "KINTO_SHARD_BUCKET_MAX_CONCURRENCY": "2", "KINTO_SHARD_BUCKET_MAX_QUEUE": "8",
    }


def goose(bin_dir, host, scenarios, users, seconds, report, throttle=None):
    cmd = ["taskset", "-c", bench.LOAD_CPU, str(bin_dir / "kinto-load"), "--host", host, "--users", str(users),
           "--increase-rate", str(users), "--run-time", f"{seconds}s", "--scenarios", scenarios,
           "--report-file", str(report), "--quiet", "--no-print-metrics"]
    if throttle:
        cmd += ["--throttle-requests", str(throttle)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(proc, report, what):
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"kinto-load failed ({what}): {err[-2000:]}")
    return json.loads(report.read_text())


def flood_summary(report):
    rm = report["raw_metrics"]
    secs = max(rm["duration"], 1)
    statuses, total = {}, 0
    for r in rm["requests"].values():
        total += r["raw_data"]["counter"]
        for code, n in r["status_code_counts"].items():
            statuses[code] = statuses.get(code, 0) + int(n)
    return {"requests": total, "rps": round(total / secs, 1), "status": statuses}


def run_case(args, bin_dir, out, name, settings, flood):
    print(f"{name}: {args.tenants} tenants at {args.tenants_rate} req/s" + (", one flooding" if flood else ""))
    data = Path(tempfile.mkdtemp(prefix="kinto-rs-noisy-"))
    port = 8893
    url = f"http://127.0.0.1:{port}"
    server = bench.start_ours(data, port, bin_dir / "kinto", {**args.settings, **settings})
    try:
        bench.wait_up(url)
        cpu = bench.Cpu(str(bin_dir / "kinto") + "$")
        c0 = cpu.read()
        flooder = None
        if flood:
            flood_report = out / f"{name}-flood.json"
            # Started first and ended last, so the others run under the flood throughout.
            flooder = goose(bin_dir, url, "flood", args.flooders, args.duration + 2, flood_report)
            time.sleep(1)
        others_report = out / f"{name}-others.json"
        t0 = time.time()
        others = goose(bin_dir, url, "storagesync", args.tenants, args.duration, others_report, args.tenants_rate)
        report = finish(others, others_report, f"{name} others")
        gen_cpu = time.time() - t0  # wall time; the generator's CPU is not this benchmark's question
        result = {"settings": settings, "others": bench.summarise(report, 0.0, cpu.read() - c0)}
        result["others"]["error_rate"] = round(result["others"]["errors"] / max(result["others"]["requests"], 1), 6)
        result["others"]["wall_s"] = round(gen_cpu, 1)
        if flooder:
            result["flood"] = flood_summary(finish(flooder, flood_report, f"{name} flood"))
        result["rss_mb"] = round(bench.rss_mb(server.pid), 1)
        o = result["others"]
        print(f"  others: {o['rps']} req/s, p99 {o['p99_ms']} ms, error rate {o['error_rate']}"
              + (f"; flood: {result['flood']['rps']} req/s {result['flood']['status']}" if flooder else ""))
        return result
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(data, ignore_errors=True)


def run(args):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(args.bin_dir).resolve() if args.bin_dir else bench.REL
    results = {"duration_s": args.duration, "tenants": args.tenants, "tenants_rate": args.tenants_rate,
               "flooders": args.flooders, "kinto_rs_settings": args.settings, "binaries": str(bin_dir.name)}
    results["baseline"] = run_case(args, bin_dir, out, "baseline", LIMITS_OFF, flood=False)
    results["flood_limits_off"] = run_case(args, bin_dir, out, "flood-limits-off", LIMITS_OFF, flood=True)
    results["flood_limits_on"] = run_case(args, bin_dir, out, "flood-limits-on", limits_on(args), flood=True)
    base = max(results["baseline"]["others"]["p99_ms"], 1e-9)
    results["p99_vs_baseline"] = {
        case: round(results[case]["others"]["p99_ms"] / base, 2) for case in ("flood_limits_off", "flood_limits_on")
    }
    on = results["flood_limits_on"]["others"]
    results["goal_met"] = results["p99_vs_baseline"]["flood_limits_on"] <= 2.0 and on["errors"] == 0
    (out / "noisy-neighbour.json").write_text(json.dumps(results, indent=2))
    print(json.dumps({k: results[k] for k in ("p99_vs_baseline", "goal_met")}))
