"""Online resharding (issue 19, docs/placement.md section 5): real `kinto-gateway` and `kinto-shard` processes on
loopback share a placement directory (target `split`, the embedded store) or a Cassandra keyspace holding data and
map (target `cql`), and `kinto-shard admin join|rebalance` moves slots between them while users keep writing (If-Match chains, /batch, default-bucket creation, new buckets, accounts). Afterwards
every acknowledged write is there, every chain unbroken, every collection's timestamps strictly increasing, and every
bucket listed once. Then the old owner SIGSTOPped, and a shard SIGKILLed, in the middle of a move.
Ours only (Kinto has no shards)."""

import fcntl
import json
import os
import signal
import subprocess
import threading
import time

import pytest
import requests

from harness import BASE_SETTINGS, BIN, _clean_env, _env_settings, cql_contact_point, cql_login, free_port
from test_live_map import metric, owners, slot, start, wait_for
from writers import Writers

SETTINGS = {**BASE_SETTINGS, "includes": "kinto.plugins.default_bucket kinto.plugins.accounts",
            "multiauth_policies": "account basicauth", "account_create_principals": "system.Everyone",
            "request_timeout_seconds": "30", "experimental_permissions_endpoint": "true"}


class Deployment:
    """A gateway and shards started here, sharing `placement/` or, on CQL, a keyspace (shard `i` keeps its port
    across restarts). On CQL the gateway has no placement directory: it learns the map from the shards."""

    def __init__(self, tmp_path, cql=False, roles=False):
        self.tmp, self.placement = tmp_path, tmp_path / "placement"
        self.ports, self.metrics, self.procs, self.starts = {}, {}, {}, 0
        self.cql = {}
        if cql:
            self.cql = {"KINTO_STORAGE_BACKEND": "cql", "KINTO_CQL_CONTACT_POINTS": cql_contact_point(),
                        "KINTO_CQL_KEYSPACE": "resharding_" + os.urandom(4).hex(),
                        "KINTO_CQL_REQUEST_TIMEOUT_MS": "20000", **cql_login()}
            if roles:
                # Each shard writes under a role of its own, which a rebalance revokes to fence it. The grace covers
                # tools/cassandra's 1 s permission cache; a write accepted before the revocation and applied later
                # (a timeout, the batchlog) needs production's default of 20 s, which this one node does not. The
                # grace must exceed the shards' lease on the map.
                self.cql.update({"KINTO_CQL_SHARD_ROLES": "true", "KINTO_FENCE_GRACE_SECONDS": "3",
                                 "KINTO_PLACEMENT_LEASE_SECONDS": "2"})
            out = subprocess.run([str(BIN / "kinto-shard"), "migrate"], env={**_clean_env(), **self.cql},
                                 capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, (out.stdout, out.stderr)

    def backend(self):
        """Where shards and the admin commands find the data and the map."""
        return {"KINTO_PLACEMENT_DIR": str(self.placement), **self.cql}

    def shard_url(self, i):
        return f"http://127.0.0.1:{self.ports[i]}"

    def start_shard(self, i, count):
        self.ports.setdefault(i, free_port())
        self.metrics.setdefault(i, free_port())
        self.starts += 1
        env = {**_env_settings(SETTINGS), "KINTO_BIND": f"127.0.0.1:{self.ports[i]}",
               "KINTO_DATA_DIR": str(self.tmp / f"shard-{i}"), "KINTO_SHARD_INDEX": str(i),
               "KINTO_SHARD_COUNT": str(count), **self.backend(),
               "KINTO_PLACEMENT_POLL_MS": "50", "KINTO_METRICS_BIND": f"127.0.0.1:{self.metrics[i]}"}
        self.procs[i] = start("kinto-shard", env, self.ports[i], self.tmp / f"shard-{i}-{self.starts}.log")

    def start(self, count=2):
        for i in range(count):
            self.start_shard(i, count)
        port = free_port()
        env = {**_env_settings(SETTINGS), "KINTO_BIND": f"127.0.0.1:{port}",
               "KINTO_SHARD_URLS": ",".join(self.shard_url(i) for i in range(count)),
               "KINTO_PLACEMENT_POLL_MS": "100", **({} if self.cql else {"KINTO_PLACEMENT_DIR": str(self.placement)})}
        self.procs["gateway"] = start("kinto-gateway", env, port, self.tmp / "gateway.log")
        self.url = f"http://127.0.0.1:{port}/v1"
        for i in range(count):
            self.admin("join", "--shard", str(i), "--address", self.shard_url(i))
        return self

    def admin(self, *args, check=True):
        env = {**_clean_env(), **self.backend(), "KINTO_MOVE_BATCH_SLOTS": "256",
               "KINTO_FREEZE_TIMEOUT_SECONDS": "1"}
        out = subprocess.run([str(BIN / "kinto-shard"), "admin", *args], env=env, capture_output=True, text=True,
                             timeout=120)
        if check:
            assert out.returncode == 0, (out.stdout, out.stderr)
        return out

    def rebalance_in_background(self, shards):
        env = {**_clean_env(), **self.backend(), "KINTO_MOVE_BATCH_SLOTS": "64",
               "KINTO_FREEZE_TIMEOUT_SECONDS": "1"}
        return subprocess.Popen([str(BIN / "kinto-shard"), "admin", "rebalance", "--shards", str(shards)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def grow(self, count):
        """Names the new shards in the map, starts them, and moves their share to them."""
        new = [i for i in range(count) if i not in self.ports]
        for i in new:
            self.ports[i] = free_port()
            self.admin("join", "--shard", str(i), "--address", self.shard_url(i))
        for i in new:
            self.start_shard(i, count)
        return self.admin("rebalance", "--shards", str(count))

    def stored_map(self):
        return json.loads(self.admin("map").stdout)

    def stop(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
                proc.wait(timeout=30)


@pytest.fixture
def deployment(tmp_path, target):
    d = Deployment(tmp_path, cql=target == "cql")
    try:
        yield d.start()
    finally:
        d.stop()


def assert_settled(d, count):
    stored = d.stored_map()
    assert sorted(int(i) for i in stored["shards"]) == list(range(count))
    assert "moving" not in stored
    owners = {owner for _, owner in stored["owners"]}
    assert owners == set(range(count))
    for i in range(count):
        m = f"http://127.0.0.1:{d.metrics[i]}/metrics"
        wait_for(lambda: metric(m, "kinto_shard_map_generation") == stored["generation"])
        assert metric(m, "kinto_shard_moves_in_progress") == 0
    total = sum(metric(f"http://127.0.0.1:{d.metrics[i]}/metrics", "kinto_shard_slots") for i in range(count))
    assert total == 4096


# `split` is the embedded store; `cql` runs these on the keyspace.
@pytest.mark.targets("split")
def test_writers_see_no_error_while_the_shard_count_goes_2_5_3(deployment):
    d = deployment
    with Writers(d.url) as writers:
        grown = d.grow(5)
        assert "balanced over 5 shards" in grown.stdout, grown.stdout
        shrunk = d.admin("rebalance", "--shards", "3")
        assert "balanced over 3 shards" in shrunk.stdout and "shards [3, 4] left the map" in shrunk.stdout
        time.sleep(0.5)
    assert writers.failures == []
    assert writers.verify() > 20
    assert_settled(d, 3)
    # The retired shards own nothing, and the gateway no longer asks them.
    for i in (3, 4):
        d.procs[i].terminate()
        d.procs[i].wait(timeout=30)
    assert requests.get(f"{d.url}/__heartbeat__", timeout=30).status_code == 200
    writers.verify()
    # A shard started with the old count is refused, naming the stored one.
    out = subprocess.run([str(BIN / "kinto-shard")], env={
        **_clean_env(), "KINTO_BIND": f"127.0.0.1:{free_port()}", "KINTO_DATA_DIR": str(d.tmp / "late"),
        "KINTO_SHARD_INDEX": "0", "KINTO_SHARD_COUNT": "2", **d.backend()},
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "map of 3 shards" in out.stderr, out.stderr


def watch(proc, word, then):
    """Reads `proc`'s progress lines; calls `then` once, at the first line holding `word`."""
    lines, done = [], [False]

    def read():
        for line in proc.stdout:
            lines.append(line)
            if word in line and not done[0]:
                done[0] = True
                then()

    t = threading.Thread(target=read)
    t.start()
    return lines, t


# `split` is the embedded store; `cql` runs these on the keyspace.
@pytest.mark.targets("split")
def test_a_paused_old_owner_is_fenced_and_the_moves_finish(deployment):
    """Shard 0 is SIGSTOPped as soon as a batch of its slots is copied, and resumed 2 s later: the handoff goes on
    without it, it releases the slots when it reads the map, and what it was sent meanwhile is refused and
    retried on the new owner."""
    d = deployment
    with Writers(d.url) as writers:
        d.admin("join", "--shard", "2", "--address", f"http://127.0.0.1:{d.ports.setdefault(2, free_port())}")
        d.start_shard(2, 3)
        proc = d.rebalance_in_background(3)
        lines, reader = watch(proc, "copied", lambda: d.procs[0].send_signal(signal.SIGSTOP))
        wait_for(lambda: any("copied" in line for line in lines), timeout=60)
        time.sleep(2)
        d.procs[0].send_signal(signal.SIGCONT)
        proc.wait(timeout=120)
        reader.join(timeout=30)
        if proc.returncode != 0:  # the pause hit a freeze or a copy: that batch rolled back; run again
            assert any("rolled back" in line for line in lines), lines
            d.admin("rebalance", "--shards", "3")
        time.sleep(0.5)
    assert writers.failures == [], "".join(lines)
    writers.verify()
    assert_settled(d, 3)


# `split` is the embedded store; `cql` runs these on the keyspace.
@pytest.mark.targets("split")
def test_a_shard_killed_mid_move_loses_nothing(deployment):
    """The new owner is SIGKILLed while a batch moves to it: the batch rolls back, and once it is restarted the
    rebalance completes. Then the old owner is killed right after a copy: the move completes or rolls back."""
    d = deployment
    with Writers(d.url, tolerate=(503,)) as writers:
        d.admin("join", "--shard", "2", "--address", f"http://127.0.0.1:{d.ports.setdefault(2, free_port())}")
        d.start_shard(2, 3)
        proc = d.rebalance_in_background(3)
        lines, reader = watch(proc, "announced", lambda: d.procs[2].send_signal(signal.SIGKILL))
        proc.wait(timeout=120)
        reader.join(timeout=30)
        assert proc.returncode != 0 and any("rolled back" in line for line in lines), lines
        d.procs[2].wait(timeout=30)
        d.start_shard(2, 3)
        proc = d.rebalance_in_background(3)
        lines, reader = watch(proc, "copied", lambda: d.procs[0].send_signal(signal.SIGKILL))
        proc.wait(timeout=120)
        reader.join(timeout=30)
        d.procs[0].wait(timeout=30)
        d.start_shard(0, 3)
        d.admin("rebalance", "--shards", "3")
        time.sleep(0.5)
    assert [f for f in writers.failures if f[1] != "request"] == []
    writers.verify()
    assert_settled(d, 3)


def announce(d, slots, to):
    """A coordinator that died after announcing a batch: the map shows `slots` moving to shard `to`."""
    with open(d.placement / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stored = d.stored_map()
        stored["generation"] += 1
        stored["moving"] = {str(s): {"to": to} for s in slots}
        tmp = d.placement / "map.json.tmp"
        tmp.write_text(json.dumps(stored))
        os.rename(tmp, d.placement / "map.json")


@pytest.mark.targets("split")
def test_a_batch_left_moving_is_resumed_or_aborted(deployment):
    d = deployment
    if d.cql:
        pytest.skip("the test edits map.json by hand to play a coordinator that died; on CQL the map is a keyspace "
                    "row, changed only by a lightweight transaction")
    auth = ("user0", "pw")
    bucket = next(b for b in (f"r{i}" for i in range(10000)) if slot(b) < 8)
    assert requests.put(f"{d.url}/buckets/{bucket}", auth=auth, timeout=30).status_code == 201
    d.admin("join", "--shard", "2", "--address", f"http://127.0.0.1:{d.ports.setdefault(2, free_port())}")
    d.start_shard(2, 3)
    announce(d, range(8), 2)
    # Aborted: the slots stay with shard 0, which still takes writes.
    out = d.admin("abort").stdout
    assert "rolled back 8 slots (0..=7) shard 0 -> shard 2" in out, out
    assert "moving" not in d.stored_map()
    r = requests.put(f"{d.url}/buckets/{bucket}/collections/c", auth=auth, timeout=30)
    assert r.status_code == 201, r.text
    # Resumed: the next rebalance finishes the batch first, then the rest.
    announce(d, range(8), 2)
    out = d.admin("rebalance", "--shards", "3").stdout
    assert "resuming 8 slots (0..=7) shard 0 -> shard 2" in out and "balanced over 3 shards" in out, out
    stored = d.stored_map()
    assert owners(stored)[slot(bucket)] == 2
    r = requests.get(f"{d.url}/buckets/{bucket}/collections/c", auth=auth, timeout=30)
    assert r.status_code == 200, r.text


def killed_after_announcing(d, shards):
    """Runs a rebalance to `shards` and SIGKILLs its coordinator right after it announced its first batch. Shard 0,
    the batch's old owner, is SIGSTOPped meanwhile, so the coordinator is stuck in its freeze call when it dies
    (not further on). Returns the batch's `(first, last)` slots, as the coordinator printed them."""
    d.procs[0].send_signal(signal.SIGSTOP)
    try:
        proc = d.rebalance_in_background(shards)
        lines, reader = watch(proc, "announced", proc.kill)
        proc.wait(timeout=60)
        reader.join(timeout=30)
    finally:
        d.procs[0].send_signal(signal.SIGCONT)
    line = next(line for line in lines if "announced" in line)
    assert "shard 0 -> shard 2" in line, lines
    first, last = line.split("(", 1)[1].split(")", 1)[0].split("..=")
    return int(first), int(last)


@pytest.mark.targets("split")
def test_a_batch_a_dead_coordinator_left_moving_is_aborted_or_resumed(deployment):
    """A coordinator killed in the middle of a batch leaves it in the map, whichever store holds the map (on CQL a
    keyspace row that only the coordinator's lightweight transactions change): `abort` rolls it back, and the old
    owner takes writes for its slots again; a later `rebalance` resumes it before moving anything else."""
    d = deployment
    auth = ("user0", "pw")
    d.admin("join", "--shard", "2", "--address", f"http://127.0.0.1:{d.ports.setdefault(2, free_port())}")
    d.start_shard(2, 3)
    first, last = killed_after_announcing(d, 3)
    assert d.stored_map().get("moving"), "the dead coordinator's batch is in the map"
    out = d.admin("abort").stdout
    assert f"rolled back {last - first + 1} slots ({first}..={last}) shard 0 -> shard 2" in out, out
    assert "moving" not in d.stored_map()
    bucket = next(b for b in (f"dead{i}" for i in range(100000)) if first <= slot(b) <= last)
    r = requests.put(f"{d.url}/buckets/{bucket}", auth=auth, timeout=30)
    assert r.status_code == 201, r.text
    first, last = killed_after_announcing(d, 3)
    assert first <= slot(bucket) <= last, "the same batch is announced again"
    out = d.admin("rebalance", "--shards", "3").stdout
    assert f"resuming {last - first + 1} slots ({first}..={last}) shard 0 -> shard 2" in out, out
    assert "balanced over 3 shards" in out, out
    assert owners(d.stored_map())[slot(bucket)] == 2
    r = requests.get(f"{d.url}/buckets/{bucket}", auth=auth, timeout=30)
    assert r.status_code == 200, r.text
    assert_settled(d, 3)


@pytest.mark.targets("cql")
def test_an_unanswering_cql_owner_is_fenced_and_its_slots_move(tmp_path, target):
    """docs/placement.md section 6, path 2. Shard 0 is SIGSTOPped before a rebalance, so it cannot freeze its batch:
    the coordinator revokes its role, waits out the grace and hands the batch to shard 2 without it. Resumed, shard 0
    sends what it was asked meanwhile under the revoked role: Cassandra refuses it, and shard 0 stops. Started again,
    it serves the slots it kept. No acknowledged write is lost, no chain broken, no bucket served by two shards."""
    d = Deployment(tmp_path, cql=True, roles=True)
    try:
        d.start()
        auth = ("user0", "pw")
        with Writers(d.url, tolerate=(503,)) as writers:
            d.admin("join", "--shard", "2", "--address", f"http://127.0.0.1:{d.ports.setdefault(2, free_port())}")
            d.start_shard(2, 3)
            time.sleep(0.5)
            d.procs[0].send_signal(signal.SIGSTOP)
            try:
                env = {**_clean_env(), **d.backend(), "KINTO_MOVE_BATCH_SLOTS": "1024",
                       "KINTO_FREEZE_TIMEOUT_SECONDS": "1"}
                out = subprocess.run([str(BIN / "kinto-shard"), "admin", "rebalance", "--shards", "3"], env=env,
                                     capture_output=True, text=True, timeout=120)
            finally:
                d.procs[0].send_signal(signal.SIGCONT)
            assert out.returncode == 0, (out.stdout, out.stderr)
            assert "shard 0 did not freeze" in out.stdout and "fenced shard 0 (MODIFY revoked" in out.stdout, out.stdout
            assert "balanced over 3 shards" in out.stdout, out.stdout
            # A write to a slot shard 0 kept reaches it; so do the writes it was sent while stopped. Its role may not
            # write any more: the commit is refused, and the shard stops.
            table = owners(d.stored_map())
            kept = next(b for b in (f"kept{i}" for i in range(100000)) if table[slot(b)] == 0)
            requests.put(f"{d.url}/buckets/{kept}", auth=auth, timeout=60)
            assert d.procs[0].wait(timeout=60) != 0
            log = (tmp_path / "shard-0-1.log").read_text(errors="replace")  # shard 0 was the first started
            assert "fenced" in log, log[-3000:]
            d.start_shard(0, 3)
            r = requests.put(f"{d.url}/buckets/{kept}", auth=auth, timeout=60)
            assert r.status_code in (200, 201), r.text
            time.sleep(0.5)
        assert [f for f in writers.failures if f[1] != "request"] == [], writers.failures
        writers.verify()
        assert_settled(d, 3)
    finally:
        d.stop()
