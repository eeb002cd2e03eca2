"""Throughput and p99 of the storage.sync mix while `kinto-shard admin rebalance` grows an embedded deployment
from 2 to 4 shards, against the same load in steady state (issue 19). The deployment is `kinto-gateway` in front of
`kinto-shard` processes sharing a placement directory (the all-in-one binary has no ShardAdmin port); the servers
and the coordinator are pinned to the server CPU, the load generator to the other.

Two phases on one deployment: `steady` (2 shards, the new ones joined and idle), then `rebalance` (the same load
while the slots move: give `--duration` room for the whole rebalance, whose time is reported). Writes
`<out>/rebalance.json` and prints a summary. Smoke it on a debug build with `--bin-dir target/debug --duration 5`;
measure on the release build.

With `--cql HOST:PORT` the shards keep data and map in a fresh keyspace of that Cassandra node instead (data stays
put; a move only freezes, drains and hands off), and the gateway learns the map from the shards. The node is not
started here (tools/cassandra/start) nor pinned: it shares the machine with both.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import bench
from noisy_neighbour import finish, goose


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINTO_")}
    env.update({"KINTO_INCLUDES": "kinto.plugins.default_bucket", "KINTO_USERID_HMAC_SECRET": "load-test-secret",
                "KINTO_MULTIAUTH_POLICIES": "basicauth", "KINTO_BUCKET_CREATE_PRINCIPALS": "system.Authenticated",
                "KINTO_DEFAULT_BUCKET_HMAC_SECRET": "", "KINTO_LOG_LEVEL": "warn", **extra})
    return env


class Deployment:
    def __init__(self, bin_dir, data, cql=None):
        self.bin_dir, self.data, self.placement = bin_dir, data, data / "placement"
        self.ports, self.procs = {}, []
        # Where shards and the coordinator find data and map.
        self.store = {"KINTO_PLACEMENT_DIR": str(self.placement)}
        if cql:
            self.store = {"KINTO_STORAGE_BACKEND": "cql", "KINTO_CQL_CONTACT_POINTS": cql,
                          "KINTO_CQL_KEYSPACE": f"rebalance_{int(time.time())}",
                          "KINTO_CQL_REQUEST_TIMEOUT_MS": "20000",
                          # tools/cassandra's login; a node without authentication ignores it.
                          "KINTO_CQL_USERNAME": os.environ.get("KINTO_CQL_USERNAME", "cassandra"),
                          "KINTO_CQL_PASSWORD": os.environ.get("KINTO_CQL_PASSWORD", "cassandra")}
            out = subprocess.run([str(bin_dir / "kinto-shard"), "migrate"], env=server_env(self.store),
                                 capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(f"kinto-shard migrate failed: {out.stdout}{out.stderr}")

    def url(self, i):
        return f"http://127.0.0.1:{self.ports[i]}"

    def shard(self, i, count):
        env = server_env({"KINTO_BIND": f"127.0.0.1:{self.ports[i]}", "KINTO_DATA_DIR": str(self.data / f"shard-{i}"),
                          "KINTO_SHARD_INDEX": str(i), "KINTO_SHARD_COUNT": str(count), **self.store})
        self.start(["kinto-shard"], env)

    def start(self, argv, env):
        p = subprocess.Popen(["taskset", "-c", bench.SERVER_CPU, str(self.bin_dir / argv[0]), *argv[1:]], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)

    def admin(self, *args, batch=16):
        env = server_env({**self.store, "KINTO_MOVE_BATCH_SLOTS": str(batch)})
        cmd = ["taskset", "-c", bench.SERVER_CPU, str(self.bin_dir / "kinto-shard"), "admin", *args]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"kinto-shard admin {' '.join(args)} failed: {out.stdout[-2000:]}{out.stderr[-2000:]}")
        return out.stdout

    def up(self, gateway_port):
        for i in range(4):
            self.ports[i] = free_port()
        for i in range(2):
            self.shard(i, 2)
        time.sleep(1)
        for i in range(4):
            self.admin("join", "--shard", str(i), "--address", self.url(i))
        for i in (2, 3):
            self.shard(i, 4)
        # On CQL the gateway links no driver: it asks the shards for the map.
        placement = {"KINTO_PLACEMENT_DIR": str(self.placement)} if "KINTO_PLACEMENT_DIR" in self.store else {}
        env = server_env({"KINTO_BIND": f"127.0.0.1:{gateway_port}", **placement,
                          "KINTO_SHARD_URLS": ",".join(self.url(i) for i in range(4))})
        self.start(["kinto-gateway"], env)

    def down(self):
        for p in reversed(self.procs):
            p.terminate()
            p.wait(10)


def phase(args, bin_dir, out, url, name, during=None):
    """Runs the load for `args.duration` seconds (and until `during`, started a second in, returns)."""
    cpu = bench.Cpu(str(bin_dir / "kinto-shard") + "$", str(bin_dir / "kinto-gateway") + "$")
    c0 = cpu.read()
    report = out / f"rebalance-{name}.json"
    load = goose(bin_dir, url, "storagesync", args.users, args.duration, report, args.rate)
    extra = {}
    if during:
        time.sleep(1)
        t0 = time.time()
        extra["log"] = during()
        extra["rebalance_s"] = round(time.time() - t0, 1)
    result = bench.summarise(finish(load, report, name), 0.0, cpu.read() - c0)
    result.update(extra)
    print(f"  {name}: {result['rps']} req/s, p99 {result['p99_ms']} ms, errors {result['errors']}"
          + (f", rebalance {extra['rebalance_s']} s" if during else ""))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin-dir", help="where the binaries are (default: the release build)")
    parser.add_argument("--duration", type=int, default=60, help="seconds of load per phase (at least)")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--rate", type=int, default=500, help="requests per second of the whole load")
    parser.add_argument("--batch-slots", type=int, default=16, help="move_batch_slots of the rebalance")
    parser.add_argument("--out", default="loadtests/out")
    parser.add_argument("--cql", metavar="HOST:PORT", help="shards on this Cassandra node instead of the embedded store")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(args.bin_dir).resolve() if args.bin_dir else bench.REL
    data = Path(tempfile.mkdtemp(prefix="kinto-rs-rebalance-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    d = Deployment(bin_dir, data, args.cql)
    try:
        d.up(port)
        bench.wait_up(url)
        results = {"users": args.users, "rate": args.rate, "duration_s": args.duration,
                   "move_batch_slots": args.batch_slots, "binaries": bin_dir.name,
                   "store": "cql" if args.cql else "embedded"}
        print(f"storage.sync mix, {args.users} users at {args.rate} req/s; 2 shards, then 2 -> 4"
              + (f" (CQL at {args.cql})" if args.cql else ""))
        results["steady"] = phase(args, bin_dir, out, url, "steady")
        results["rebalance"] = phase(args, bin_dir, out, url, "rebalance",
                                     lambda: d.admin("rebalance", "--shards", "4", batch=args.batch_slots))
        base = results["steady"]
        results["rps_vs_steady"] = round(results["rebalance"]["rps"] / max(base["rps"], 1e-9), 2)
        results["p99_vs_steady"] = round(results["rebalance"]["p99_ms"] / max(base["p99_ms"], 1e-9), 2)
        (out / "rebalance.json").write_text(json.dumps(results, indent=2))
        print(json.dumps({k: results[k] for k in ("rps_vs_steady", "p99_vs_steady")}))
    finally:
        d.down()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
