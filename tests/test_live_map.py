"""The live shard map (issue 19, docs/placement.md section 3): `kinto-gateway` and two `kinto-shard` processes share
a placement directory; the test changes the stored map by compare-and-set while clients write, and no client sees an
error. Shards poll the map quickly and the gateway slowly, so the gateway learns a change only from a shard's
`WrongShard` refusal, refreshes and retries. Only slots that hold no data change owner: moving data comes later.
Ours only (Kinto has no shards)."""

import fcntl
import hashlib
import json
import os
import re
import subprocess
import threading
import time

import pytest
import requests

from harness import BIN, _clean_env, free_port

AUTH = ("alice", "secret")


def slot(bucket):
    """common/placement: the first two bytes of SHA-256 of the id, big-endian, modulo 4096."""
    return int.from_bytes(hashlib.sha256(bucket.encode()).digest()[:2], "big") % 4096


def owners(stored):
    """The owner of every slot of a stored map (kept as runs `[first, owner]`)."""
    runs = stored["owners"] + [[4096, None]]
    return [owner for (first, owner), (end, _) in zip(runs, runs[1:]) for _ in range(first, end)]


def as_runs(table):
    return [[s, o] for s, o in enumerate(table) if s == 0 or table[s - 1] != o]


def change_map(placement, edit):
    """A compare-and-set as kinto-placement's file_store does it: under the directory's lock, the next generation."""
    with open(placement / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stored = json.loads((placement / "map.json").read_text())
        table = owners(stored)
        edit(table)
        stored.update(generation=stored["generation"] + 1, owners=as_runs(table))
        tmp = placement / "map.json.tmp"
        with open(tmp, "w") as f:
            json.dump(stored, f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, placement / "map.json")
        return stored["generation"]


def start(binary, env, port, log, *args):
    """Starts `binary` with its log in the file `log` (a pipe nobody reads would fill and block it)."""
    full = _clean_env()
    full.update(env)
    with open(log, "w") as err:
        proc = subprocess.Popen([str(BIN / binary), *args], env=full, stdout=subprocess.PIPE, stderr=err, text=True,
                                stdin=subprocess.DEVNULL)
    line = proc.stdout.readline()
    assert f"listening on 127.0.0.1:{port}" in line, (line, log.read_text())
    return proc


def metric(url, name, **labels):
    """The sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in requests.get(url, timeout=10).text.splitlines():
        found = re.match(rf"^{re.escape(name)}(?:{{(.*)}})? (\S+)$", line)
        if found and all(f'{k}="{v}"' in (found.group(1) or "") for k, v in labels.items()):
            total += float(found.group(2))
    return total


@pytest.fixture
def deployment(tmp_path):
    placement = tmp_path / "placement"
    procs, shard_urls, shard_metrics = [], [], []
    try:
        for i in range(2):
            port, metrics = free_port(), free_port()
            procs.append(start("kinto-shard", {
                "KINTO_BIND": f"127.0.0.1:{port}", "KINTO_DATA_DIR": str(tmp_path / f"shard-{i}"),
                "KINTO_SHARD_INDEX": str(i), "KINTO_SHARD_COUNT": "2", "KINTO_PLACEMENT_DIR": str(placement),
                "KINTO_PLACEMENT_POLL_MS": "20", "KINTO_METRICS_BIND": f"127.0.0.1:{metrics}",
            }, port, tmp_path / f"shard-{i}.log"))
            shard_urls.append(f"http://127.0.0.1:{port}")
            shard_metrics.append(f"http://127.0.0.1:{metrics}/metrics")
        port = free_port()
        procs.append(start("kinto-gateway", {
            "KINTO_BIND": f"127.0.0.1:{port}", "KINTO_SHARD_URLS": ",".join(shard_urls),
            "KINTO_PLACEMENT_DIR": str(placement), "KINTO_PLACEMENT_POLL_MS": "600000",
            "KINTO_INCLUDES": "kinto.plugins.prometheus",
        }, port, tmp_path / "gateway.log"))
        yield {"url": f"http://127.0.0.1:{port}/v1", "placement": placement, "shard_metrics": shard_metrics,
               "shard_urls": shard_urls}
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=30)


def wait_for(check, timeout=10):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_bucket_of_a_handed_over_empty_slot_is_created_on_its_new_owner(deployment):
    url, placement = deployment["url"], deployment["placement"]
    shard0, shard1 = deployment["shard_metrics"]
    bucket = next(b for b in (f"moved{i}" for i in range(10000)) if slot(b) < 2048)  # shard 0's in the first map
    generation = change_map(placement, lambda table: table.__setitem__(slot(bucket), 1))
    # Each shard reads the map on its own poll: wait for both, or shard 1 may still count 2048.
    wait_for(lambda: all(metric(s, "kinto_shard_map_generation") == generation for s in (shard0, shard1)))
    assert metric(shard0, "kinto_shard_slots", shard="0") == 2047
    assert metric(shard1, "kinto_shard_slots", shard="1") == 2049
    # The gateway still routes by generation 1: shard 0 refuses, naming generation 2; the gateway re-reads the map
    # and the retry creates the bucket on shard 1.
    r = requests.put(f"{url}/buckets/{bucket}", auth=AUTH, timeout=10)
    assert r.status_code == 201, r.text
    metrics = f"{url}/__metrics__"
    assert metric(metrics, "kinto_gateway_wrong_shard_retries_total") >= 1
    assert metric(metrics, "kinto_gateway_map_refresh_total") == 1
    assert metric(shard0, "kinto_shard_operation_seconds_count", shard="0", method="put", outcome="201") == 1
    assert metric(shard1, "kinto_shard_operation_seconds_count", shard="1", method="put", outcome="ok") == 1
    assert requests.get(f"{url}/buckets/{bucket}", auth=AUTH, timeout=10).status_code == 200


def admin(*args, **env):
    out = subprocess.run([str(BIN / "kinto-shard"), "admin", *args], env={**_clean_env(), **env},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, (out.stdout, out.stderr)
    return out.stdout


def test_the_admin_cli_shows_a_shards_slots_and_plans_a_rebalance(deployment):
    placement = deployment["placement"]
    shard0, shard1 = deployment["shard_urls"]
    assert "map generation 1\nowned slots 2048: 0..2048\nfrozen slots: none" in admin("status", "--url", shard0)
    generation = change_map(placement, lambda table: table.__setitem__(5, 1))
    wait_for(lambda: metric(deployment["shard_metrics"][1], "kinto_shard_map_generation") == generation)
    assert f"map generation {generation}\nowned slots 2049: 5..6, 2048..4096" in admin("status", "--url", shard1)
    plan = admin("plan", "--shards", "3", KINTO_PLACEMENT_DIR=str(placement))
    assert plan.startswith(f"map generation {generation}: 2 shards -> 3, 1365 slots move\n"), plan
    assert "-> shard 2" in plan and "-> shard 0" not in plan
    # A plan moves nothing.
    assert json.loads((placement / "map.json").read_text())["generation"] == generation


def test_writers_see_no_error_while_the_map_changes(deployment):
    url, placement = deployment["url"], deployment["placement"]
    shard0 = deployment["shard_metrics"][0]
    buckets = [f"w{i}" for i in range(6)]
    for b in buckets:
        assert requests.put(f"{url}/buckets/{b}", auth=AUTH, timeout=10).status_code == 201
        assert requests.put(f"{url}/buckets/{b}/collections/c", auth=AUTH, timeout=10).status_code == 201
    used = {slot(b) for b in buckets}
    empty = [s for s in range(4096) if s not in used]
    # Slots already handed over: new buckets go there (each slot changes hands once, before any bucket is in it).
    handed = set()
    failures, done, stop = [], [0], threading.Event()

    def writer(bucket):
        session, n, etag = requests.Session(), 0, None
        while not stop.is_set():
            headers = {"If-Match": etag} if etag else {"If-None-Match": "*"}
            r = session.put(f"{url}/buckets/{bucket}/collections/c/records/r", json={"data": {"n": n}},
                            headers=headers, auth=AUTH, timeout=10)
            if r.status_code not in (200, 201):
                failures.append((bucket, r.status_code, r.text))
                return
            etag, n = r.headers["ETag"], n + 1
            done[0] += 1
            # Now and then a new bucket, in a slot handed over during the run.
            if n % 10 == 0 and handed:
                slots = set(handed)
                fresh = next(f for f in (f"{bucket}-{n}-{i}" for i in range(10**6)) if slot(f) in slots)
                r = session.put(f"{url}/buckets/{fresh}", auth=AUTH, timeout=10)
                if r.status_code != 201:
                    failures.append((fresh, r.status_code, r.text))

    threads = [threading.Thread(target=writer, args=(b,)) for b in buckets]
    for t in threads:
        t.start()
    try:
        for round in range(10):
            # Generations that change no owner, and handovers of slots no bucket is in yet.
            if round % 2:
                generation = change_map(placement, lambda table: None)
            else:
                moved = empty[round * 7:round * 7 + 7]
                generation = change_map(placement, lambda table: [table.__setitem__(s, 1 - table[s]) for s in moved])
                handed.update(moved)
            time.sleep(0.1)
        wait_for(lambda: metric(shard0, "kinto_shard_map_generation") == generation)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert failures == []
    assert done[0] > 50
    assert metric(f"{url}/__metrics__", "kinto_gateway_wrong_shard_retries_total") >= 1
    # Every write is there, its chain unbroken.
    for b in buckets:
        r = requests.get(f"{url}/buckets/{b}/collections/c/records/r", auth=AUTH, timeout=10)
        assert r.status_code == 200, r.text


def test_the_all_in_one_binary_serves_by_the_map_of_its_data_directory(tmp_path):
    """`kinto` shares one live map between its gateway and shards: a handover of an empty slot there is served."""
    port = free_port()
    data = tmp_path / "data"
    proc = start("kinto", {"KINTO_BIND": f"127.0.0.1:{port}", "KINTO_DATA_DIR": str(data), "KINTO_SHARDS": "2",
                           "KINTO_PLACEMENT_POLL_MS": "20", "KINTO_INCLUDES": "kinto.plugins.prometheus"},
                 port, tmp_path / "kinto.log", "--bare")
    try:
        url = f"http://127.0.0.1:{port}/v1"
        bucket = next(b for b in (f"moved{i}" for i in range(10000)) if slot(b) < 2048)
        generation = change_map(data / "placement", lambda table: table.__setitem__(slot(bucket), 1))
        wait_for(lambda: metric(f"{url}/__metrics__", "kinto_shard_map_generation") == generation)
        assert metric(f"{url}/__metrics__", "kinto_shard_slots", shard="1") == 2049
        assert requests.put(f"{url}/buckets/{bucket}", auth=AUTH, timeout=10).status_code == 201
        assert metric(f"{url}/__metrics__", "kinto_shard_operation_seconds_count", shard="1", method="put",
                      outcome="ok") == 1
        assert metric(f"{url}/__metrics__", "kinto_gateway_map_refresh_total") == 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_gateway_refuses_a_stored_map_of_another_shard_count(tmp_path):
    placement = tmp_path / "placement"
    placement.mkdir()
    stored = {"generation": 1, "shards": {"0": {"address": ""}, "1": {"address": ""}},
                         "owners": [[0, 0], [2048, 1]]}
    (placement / "map.json").write_text(json.dumps(stored))
    env = {**_clean_env(), "KINTO_BIND": f"127.0.0.1:{free_port()}", "KINTO_PLACEMENT_DIR": str(placement),
           "KINTO_SHARD_URLS": ",".join(f"http://127.0.0.1:{free_port()}" for _ in range(3))}
    out = subprocess.run([str(BIN / "kinto-gateway")], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "map of 2 shards" in out.stderr and "shard_urls names 3" in out.stderr, out.stderr
