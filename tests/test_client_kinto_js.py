"""kinto.js (npm `kinto`) in Node running Firefox's storage.sync flow against the server
(tests/clients/storage_sync_scenario.cjs): two devices of one user and a device of another, client-side
encrypted records in the user's `default` bucket.

Ours authenticate with Firefox Accounts JWTs from the real provider (tests/idp.py). The reference would need
kinto-fxa, which is not installed with it, so there the same flow runs with Basic auth: a differential check of
everything but the identity.
"""

import base64
import hashlib

import pytest
import requests

from idp import fxa_settings
from idp import deployments, idp  # noqa: F401 (fixtures)
from node_clients import run_scenario


EXT1 = "{d0c4a5e3-storage-sync-test}"
EXT2 = "second@example.org"


def storage_sync_profile(idp):
    return fxa_settings(idp)


def basic_profile(idp):
    return {"multiauth_policies": "basicauth", "includes": "kinto.plugins.default_bucket"}


PROFILES = {"storage_sync": storage_sync_profile, "storage_sync_basic": basic_profile}

_reports = {}


@pytest.fixture
def run(deployments, idp, target):
    """(the scenario's report on this target, run once per target; the server; each user's auth headers)."""
    if target == "ref":
        server = deployments.get(target, "storage_sync_basic")
        auth = {u: "Basic " + base64.b64encode(f"{u}:pw".encode()).decode() for u in ("alice", "carol")}
    else:
        server = deployments.get(target, "storage_sync")
        auth = {u: f"Bearer {idp.jwt(f'{u}-{target}')}" for u in ("alice", "carol")}
    if target not in _reports:
        users = {u: {"authorization": a, "secret": hashlib.sha256(u.encode()).hexdigest()} for u, a in auth.items()}
        _reports[target] = run_scenario("storage_sync_scenario", {"remote": server.url, "users": users})
    return _reports[target], server, {u: {"Authorization": a} for u, a in auth.items()}


def test_two_devices_converge_after_concurrent_offline_edits(run):
    report = run[0]
    step = report["steps"]["offline-edits"]
    assert step["a"] == step["b"]
    # CLIENT_WINS, as Firefox synced extension data: B synced its colour last, so B's colour stays; keys
    # only one side touched are merged; A's removal reached B.
    assert step["a"][EXT1] == {"a_only": True, "b_only": True, "colour": "green", "shared key": "x"}
    assert step["a"][EXT2] == {"n": 2}
    assert any(r == {"extension": EXT1, "key": "colour"} for r in report["resolved"]["b"]), report["resolved"]


def test_push_conflict_is_resolved_from_the_server_record(run):
    report = run[0]
    # B's batch answered 412 for the record A had just pushed; B's value won and was pushed again.
    batches = [e for e in report["traffic"] if e["phase"] == "push-conflict" and e.get("statuses")]
    assert any(412 in e["statuses"] for e in batches), batches
    step = report["steps"]["push-conflict"]
    assert step["a"] == step["b"]
    assert step["a"][EXT1]["size"] == "M"
    assert report["pushConflictB"][EXT1]["resolved"] >= 1
    assert report["pushConflictB"][EXT1]["ok"] is True


def test_sync_pulls_with_since_and_pushes_with_preconditions(run):
    report = run[0]
    pulls = [e for e in report["traffic"] if e["method"] == "GET" and e["path"].endswith("/records")]
    assert any("_since=" in e["query"] for e in pulls), pulls[:5]
    subrequests = [r for e in report["traffic"] if e.get("requests") for r in e["requests"]]
    assert any(r["headers"].get("If-None-Match") == "*" for r in subrequests)
    assert any(r["headers"].get("If-Match", "").strip('"').isdigit() for r in subrequests)
    assert all(e["status"] < 500 for e in report["traffic"]), [e for e in report["traffic"] if e["status"] >= 500]


def test_collections_and_records_are_named_by_salted_hashes(run):
    _, server, auth = run
    auth = auth["alice"]
    cids = {c["id"] for c in requests.get(f"{server.url}/buckets/default/collections", headers=auth,
                                          timeout=30).json()["data"]}
    assert "storage-sync-crypto" in cids
    ext = sorted(c for c in cids if c != "storage-sync-crypto")
    assert len(ext) == 2 and all(c.startswith("ext-") for c in ext), cids
    for cid in cids:
        records = requests.get(f"{server.url}/buckets/default/collections/{cid}/records", headers=auth,
                               timeout=30).json()["data"]
        assert records
        for r in records:
            # Only ciphertext: no extension id, storage key or value in clear.
            assert set(r) == {"id", "ciphertext", "IV", "last_modified"}, r
            assert r["id"] == "keys" if cid == "storage-sync-crypto" else r["id"].startswith("id-")
            assert "green" not in str(r) and "colour" not in str(r)


def test_another_user_sees_nothing(run):
    report, server, auth = run
    assert report["carol"] == {}
    alice, carol = auth["alice"], auth["carol"]
    alice_bucket = requests.get(server.url + "/", headers=alice, timeout=30).json()["user"]["bucket"]
    carol_bucket = requests.get(server.url + "/", headers=carol, timeout=30).json()["user"]["bucket"]
    assert alice_bucket != carol_bucket
    theirs = f"{server.url}/buckets/{alice_bucket}/collections/storage-sync-crypto/records"
    assert requests.get(theirs, headers=carol, timeout=30).status_code in (403, 404)
    assert requests.get(theirs, headers=alice, timeout=30).status_code == 200
    mine = requests.get(f"{server.url}/buckets/default/collections", headers=carol, timeout=30).json()["data"]
    # Carol's own keyring and her one extension, under another salt than alice's.
    assert len(mine) == 2 and "storage-sync-crypto" in {c["id"] for c in mine}
    alices = requests.get(f"{server.url}/buckets/default/collections", headers=alice, timeout=30).json()["data"]
    assert not ({c["id"] for c in mine} & {c["id"] for c in alices}) - {"storage-sync-crypto"}


def test_flushed_server_is_detected_and_refilled(run):
    report = run[0]
    assert report["flushStatus"] == 200
    assert report["flushesDetected"] == {"a": 1, "b": 0}
    step = report["steps"]["flush"]
    assert step["a"] == step["b"]
    assert step["a"][EXT1] == {"a_only": True, "after_flush": True, "b_only": True, "colour": "green",
                               "shared key": "x", "size": "M"}
    assert step["a"][EXT2] == {"n": 2}
