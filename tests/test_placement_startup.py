"""Buckets are placed by the shard map stored with a deployment (docs/placement.md): in its placement directory
(embedded), or in its keyspace (CQL). Starting it with another shard count would hide every bucket whose slot changed owner, so it is refused with the stored
count named, and the data is still there when started with the right count (issue 19). Ours only."""

import json
import os
import subprocess

import pytest
import requests

from harness import BIN, _clean_env, cql_contact_point, cql_login, free_port

AUTH = ("alice", "secret")


def serve(binary, data_dir, settings):
    """Starts `binary`; returns (process, port) once it listens, or (finished run, None) if it exits."""
    env = _clean_env()
    port = free_port()
    env.update({"KINTO_DATA_DIR": str(data_dir), "KINTO_BIND": f"127.0.0.1:{port}"})
    env.update({f"KINTO_{k.upper()}": v for k, v in settings.items()})
    args = [str(BIN / binary)] + (["--bare"] if binary == "kinto" else [])
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    line = proc.stdout.readline()
    if f"listening on 127.0.0.1:{port}" in line:
        return proc, port
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(args, proc.returncode, line + out, err), None


def stop(proc):
    proc.terminate()
    proc.wait(timeout=30)


def test_the_all_in_one_keeps_its_shard_count(tmp_path):
    data = tmp_path / "data"
    proc, port = serve("kinto", data, {"shards": "2"})
    try:
        base = f"http://127.0.0.1:{port}/v1"
        for i in range(20):
            r = requests.put(f"{base}/buckets/b{i}", auth=AUTH, timeout=10)
            assert r.status_code == 201, r.text
    finally:
        stop(proc)
    run, _ = serve("kinto", data, {"shards": "3"})
    assert run.returncode == 1, (run.stdout, run.stderr)
    assert "created with 2 shards" in run.stderr and "KINTO_SHARDS=2" in run.stderr, run.stderr
    proc, port = serve("kinto", data, {"shards": "2"})
    try:
        r = requests.get(f"http://127.0.0.1:{port}/v1/buckets", auth=AUTH, timeout=10)
        assert sorted(b["id"] for b in r.json()["data"]) == sorted(f"b{i}" for i in range(20))
    finally:
        stop(proc)


def test_a_data_directory_from_before_the_stored_map_keeps_its_count(tmp_path):
    """A directory that only has `layout.json` (written before the map was stored) gets a map of that count."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "layout.json").write_text(json.dumps({"shards": 2}))
    run, _ = serve("kinto", data, {"shards": "4"})
    assert run.returncode == 1, (run.stdout, run.stderr)
    assert "created with 2 shards" in run.stderr, run.stderr
    proc, _ = serve("kinto", data, {"shards": "2"})
    assert proc.poll() is None
    stop(proc)
    stored = json.loads((data / "placement" / "map.json").read_text())
    assert stored["generation"] == 1 and sorted(stored["shards"]) == ["0", "1"]


def test_a_shard_process_refuses_another_shard_count(tmp_path):
    data = tmp_path / "shard-0"
    proc, _ = serve("kinto-shard", data, {"shard_index": "0", "shard_count": "2"})
    assert proc is not None and proc.poll() is None
    stop(proc)
    run, _ = serve("kinto-shard", data, {"shard_index": "0", "shard_count": "5"})
    assert run.returncode == 1, (run.stdout, run.stderr)
    assert "map of 2 shards" in run.stderr and "not 5" in run.stderr, run.stderr
    assert "\nkinto-shard: " in run.stderr or run.stderr.startswith("kinto-shard: "), run.stderr
    proc, _ = serve("kinto-shard", data, {"shard_index": "1", "shard_count": "2"})
    assert proc is not None and proc.poll() is None
    stop(proc)


# The map in the keyspace: a `cql` deployment's shards share it (`split` is the test above).
@pytest.mark.targets("cql")
def test_a_cql_shard_refuses_another_shard_count(tmp_path, target):
    cql = {"storage_backend": "cql", "cql_contact_points": cql_contact_point(),
           "cql_keyspace": "startup_" + os.urandom(4).hex(),
           **{k.removeprefix("KINTO_").lower(): v for k, v in cql_login().items()}}
    env = {**_clean_env(), **{f"KINTO_{k.upper()}": v for k, v in cql.items()}}
    out = subprocess.run([str(BIN / "kinto-shard"), "migrate"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, (out.stdout, out.stderr)
    proc, port = serve("kinto-shard", tmp_path / "a", {**cql, "shard_index": "0", "shard_count": "2"})
    assert proc is not None and proc.poll() is None
    stop(proc)
    # Another data directory changes nothing: the map is in the keyspace.
    run, _ = serve("kinto-shard", tmp_path / "b", {**cql, "shard_index": "0", "shard_count": "5"})
    assert run.returncode == 1, (run.stdout, run.stderr)
    assert f"keyspace {cql['cql_keyspace']} holds a map of 2 shards" in run.stderr and "not 5" in run.stderr, \
        run.stderr
    proc, _ = serve("kinto-shard", tmp_path / "c", {**cql, "shard_index": "1", "shard_count": "2"})
    assert proc is not None and proc.poll() is None
    stop(proc)
    stored = json.loads(subprocess.run([str(BIN / "kinto-shard"), "admin", "map"], env=env, capture_output=True,
                                       text=True, timeout=60, check=True).stdout)
    assert stored["generation"] == 1 and sorted(stored["shards"]) == ["0", "1"]
