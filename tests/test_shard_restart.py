"""A shard stopped by SIGTERM and started again, as a rolling restart does (issue 20, docs/operations.md "Rolling
restart"): the stopping shard finishes what runs and refuses the rest before any effect, the gateway retries what
the stopping or absent shard did not run until the request's deadline, so writers see no error and every
acknowledged write is there afterwards, with its content. Ours only, on the topologies with shard processes
(`split`, and `cql`)."""

import re
import threading
import time

import pytest
import requests

from api import PASSWORD, Api
from harness import make_server
from test_live_map import metric, slot
from writers import Writers

pytestmark = pytest.mark.targets("split")

SETTINGS = {"includes": "kinto.plugins.default_bucket kinto.plugins.accounts kinto.plugins.prometheus",
            "multiauth_policies": "account basicauth", "account_create_principals": "system.Everyone",
            # The gateway retries until the request's deadline, which must outlast a stop, a pause and a start.
            "request_timeout_seconds": "10"}
RUNNING = re.compile(r"stopping: refusing new operations, finishing (\d+) running")


@pytest.fixture
def deployment(target):
    server = make_server(target, "restart", SETTINGS)
    yield server
    server.cleanup()


def restart(server, i, pause):
    """SIGTERM shard `i`, which must exit with 0, and start it again `pause` seconds later (same port and
    store). Returns how many operations it was running when it began to stop."""
    code = server.terminate_shard(i)
    # This process's part of the log (harness.Proc appends, after a line starting with "==== ").
    log = server.procs[i].log.read_text(errors="replace").rsplit("\n==== ", 1)[-1]
    assert code == 0, log[-3000:]
    running = [int(n) for n in RUNNING.findall(log)]
    assert running and "stopped" in log.splitlines()[-1], log[-3000:]
    time.sleep(pause)
    server.restart_shard(i)
    return running[-1]


def test_writers_see_no_error_while_each_shard_restarts(deployment):
    with Writers(deployment.url, users=6) as writers:
        for i in range(deployment.count):
            time.sleep(1)
            restart(deployment, i, pause=1.0)
        time.sleep(1)
    assert writers.failures == []
    assert writers.verify() > 20
    # The gateway did meet the stop: refusals or refused connections, retried.
    assert metric(f"{deployment.url}/__metrics__", "kinto_gateway_not_run_retries_total") >= 1


def test_calls_running_at_sigterm_are_answered(deployment):
    """Large batches keep shard 0 busy; SIGTERM lands while some run (its log counts them): every batch is
    answered 200, every sub-request succeeded, and every record is stored as acknowledged."""
    api = Api(deployment, "alice")
    bucket = next(b for b in (f"busy{i}" for i in range(10000)) if slot(b) < 2048)  # shard 0's (static map)
    assert api.put(f"/buckets/{bucket}").status_code in (200, 201)
    cid = api.create_collection(bucket)
    url = f"/buckets/{bucket}/collections/{cid}/records"
    answers, failures, stop = {}, [], threading.Event()

    def writer(n):
        s = requests.Session()
        s.auth = ("alice", PASSWORD)
        k = 0
        while not stop.is_set():
            k += 1
            body = {"requests": [{"method": "PUT", "path": f"{url}/w{n}-{k}-{j}",
                                  "body": {"data": {"n": n, "k": k, "j": j, "pad": "x" * 2000}}} for j in range(25)]}
            try:
                r = s.post(f"{deployment.url}/batch", json=body, timeout=60)
            except requests.RequestException as e:
                failures.append(repr(e))
                continue
            if r.status_code != 200:
                failures.append((r.status_code, r.text[:300]))
                continue
            for sub in r.json()["responses"]:
                if sub["status"] in (200, 201):
                    data = sub["body"]["data"]
                    answers[data["id"]] = data
                else:
                    failures.append(sub)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    try:
        running = 0
        for _ in range(5):
            time.sleep(1)
            running = restart(deployment, 0, pause=0.5)
            if running:
                break
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=90)
    assert running > 0, "no SIGTERM met a running call"
    assert failures == []
    stored, page = {}, f"{deployment.url}{url}?_limit=1000"
    while page:
        r = requests.get(page, auth=("alice", PASSWORD), timeout=60)
        assert r.status_code == 200, r.text
        stored.update((o["id"], o) for o in r.json()["data"])
        page = r.headers.get("Next-Page")
    assert set(stored) == set(answers)
    for rid, data in answers.items():
        assert stored[rid] == data, rid
