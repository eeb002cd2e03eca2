"""The operator (issue 20) against a real kube-apiserver + etcd (tests/kube.py): its generated CRD is accepted, two
replicas share one Lease so that exactly one writes, the leader reports the layout the real `kinto-shard`
processes serve by (ShardAdmin.Status) in the KintoCluster's status and events, a change of `spec.shards` is seen
as the moves it needs, an unreachable shard degrades the cluster, and when the leader dies the other replica takes
over. Moves themselves are run by the rebalance coordinator (docs/placement.md); this test covers the operator's
own part. Ours only (Kinto has no operator)."""

import json
import os
import signal
import subprocess
import time

import pytest
import yaml

import requests

from harness import BIN, _clean_env, _die_with_parent, _env_settings, cql_contact_point, cql_login, free_port
from kube import running
from test_live_map import owners, slot

NAMESPACE = "kinto-op"
GROUP, VERSION, PLURAL = "kinto-rs.dev", "v1alpha1", "kintoclusters"
LEASE_SECONDS = 3


@pytest.fixture(scope="module")
def kube():
    with running(NAMESPACE) as k:
        yield k


def wait_for(check, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def spawn(argv, env, log):
    full = {**_clean_env(), **env}
    with open(log, "w") as out:
        return subprocess.Popen(argv, env=full, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=_die_with_parent)


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def install_crd(kube):
    crd = json.loads(subprocess.run([str(BIN / "kinto-operator"), "crd"], capture_output=True, text=True,
                                    check=True, timeout=30).stdout)
    base = f"{kube.base}/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    r = kube.http.post(base, json=crd, params={"fieldValidation": "Strict"}, timeout=30)
    assert r.status_code in (201, 409), r.text

    def established():
        got = kube.http.get(f"{base}/{crd['metadata']['name']}", timeout=30).json()
        return any(c["type"] == "Established" and c["status"] == "True"
                   for c in (got.get("status") or {}).get("conditions") or [])
    wait_for(established, 30, "the CRD to be established")


def cluster_url(kube, name="", namespace=NAMESPACE):
    url = f"{kube.base}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
    return f"{url}/{name}" if name else url


def status_of(kube, name, namespace=NAMESPACE):
    return kube.http.get(cluster_url(kube, name, namespace), timeout=30).json().get("status") or {}


def set_shards(kube, name, shards, namespace=NAMESPACE):
    r = kube.http.patch(cluster_url(kube, name, namespace), json={"spec": {"shards": shards}}, timeout=30,
                        headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    return r.json()["metadata"]["generation"]


def lease_holder(kube):
    r = kube.http.get(f"{kube.base}/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/kinto-operator",
                      timeout=30)
    return r.json()["spec"].get("holderIdentity") if r.status_code == 200 else None


def events_of(kube, name):
    r = kube.http.get(f"{kube.base}/apis/events.k8s.io/v1/namespaces/{NAMESPACE}/events", timeout=30)
    assert r.status_code == 200, r.text
    return [e for e in r.json()["items"] if e.get("regarding", {}).get("name") == name]


def condition(status, kind):
    return next((c for c in status.get("conditions", []) if c["type"] == kind), {})


def test_the_leader_reports_the_shards_layout_and_hands_over_when_it_dies(kube, tmp_path):
    install_crd(kube)
    # Shard i listens on 127.0.1.i (all of 127/8 is loopback), so one address template names them all, as a
    # StatefulSet's stable pod names do in a cluster.
    port = free_port()
    placement = tmp_path / "placement"
    shards, operators = [], {}
    try:
        for i in range(2):
            shards.append(spawn([str(BIN / "kinto-shard")], {
                "KINTO_BIND": f"127.0.1.{i}:{port}", "KINTO_DATA_DIR": str(tmp_path / f"shard-{i}"),
                "KINTO_SHARD_INDEX": str(i), "KINTO_SHARD_COUNT": "2", "KINTO_PLACEMENT_DIR": str(placement),
            }, tmp_path / f"shard-{i}.log"))
        name = "kc"
        r = kube.http.post(cluster_url(kube), json={
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "KintoCluster", "metadata": {"name": name},
            "spec": {"shards": 2, "shardAddressTemplate": f"http://127.0.1.{{index}}:{port}"}},
            params={"fieldValidation": "Strict"}, timeout=30)
        assert r.status_code == 201, r.text
        # The schema generated from the Rust types is enforced by the API server.
        bad = kube.http.post(cluster_url(kube), json={
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "KintoCluster", "metadata": {"name": "bad"},
            "spec": {"shards": 0, "shardAddressTemplate": "x"}}, timeout=30)
        assert bad.status_code == 422, bad.text
        for who in ("op-a", "op-b"):
            operators[who] = spawn([str(BIN / "kinto-operator")], {
                "KUBECONFIG": str(kube.dir / "kubeconfig"), "KINTO_OPERATOR_NAMESPACE": NAMESPACE,
                "KINTO_OPERATOR_IDENTITY": who, "KINTO_OPERATOR_LEASE_SECONDS": str(LEASE_SECONDS),
                "KINTO_OPERATOR_POLL_SECONDS": "1",
            }, tmp_path / f"{who}.log")

        status = wait_for(lambda: (s := status_of(kube, name)).get("phase") == "Balanced" and s, 60,
                          "a Balanced status")
        assert status["slotsPerShard"] == [2048, 2048]
        assert status["mapGeneration"] == 1
        assert status["observedGeneration"] == 1
        assert status["slotsToMove"] == 0
        leader = status["leader"]
        assert leader in operators
        assert lease_holder(kube) == leader
        assert condition(status, "Balanced")["status"] == "True"
        assert condition(status, "ShardsReachable")["status"] == "True"

        # Asking for 3 shards: the leader sees the moves it needs (a third of the slots), not more.
        generation = set_shards(kube, name, 3)
        status = wait_for(lambda: (s := status_of(kube, name)).get("observedGeneration") == generation and s, 30,
                          "the new spec to be observed")
        assert status["phase"] == "Rebalancing"
        assert status["slotsToMove"] == 1365
        assert condition(status, "Balanced")["reason"] == "MovesPending"
        # Shard 2 is not up: it owns nothing yet, so it holds the rebalance back without degrading the cluster.
        assert "shard 2" in condition(status, "ShardsReachable")["message"]
        assert any(e["reason"] == "Rebalancing" for e in events_of(kube, name))
        assert status["leader"] == leader, "only the lease holder writes the status"

        # A shard that owns slots and does not answer degrades the cluster, with a Warning event naming it.
        stop(shards[1])
        status = wait_for(lambda: (s := status_of(kube, name)).get("phase") == "Degraded" and s, 30,
                          "a Degraded status")
        assert "shard 1" in condition(status, "ShardsReachable")["message"]
        assert any(e["reason"] == "Degraded" and e["type"] == "Warning" for e in events_of(kube, name))

        # The leader dies without releasing its lease: the other replica takes over after a lease, and the
        # status it writes names it.
        operators[leader].kill()
        operators[leader].wait()
        other = next(w for w in operators if w != leader)
        wait_for(lambda: lease_holder(kube) == other, 4 * LEASE_SECONDS + 10, "the other replica to take the lease")
        generation = set_shards(kube, name, 2)
        status = wait_for(lambda: (s := status_of(kube, name)).get("observedGeneration") == generation and s, 30,
                          "the new leader to observe the spec")
        assert status["leader"] == other
        assert status["phase"] == "Degraded"
    finally:
        for proc in [*operators.values(), *shards]:
            stop(proc)


def test_the_generated_crd_is_the_one_the_chart_installs():
    """helm/kinto-rs/crds/ holds the CRD `kinto-operator crd` prints, so the chart and the binary cannot drift."""
    from harness import REPO
    printed = json.loads(subprocess.run([str(BIN / "kinto-operator"), "crd"], capture_output=True, text=True,
                                        check=True, timeout=30).stdout)
    committed = yaml.safe_load((REPO / "helm/kinto-rs/crds/kintoclusters.yaml").read_text())
    assert committed == printed


def create_statefulset(kube, namespace, name):
    """A StatefulSet object for the operator to scale. No kubelet runs it: the test starts the shard processes
    its replicas ask for, as Kubernetes would start pods."""
    r = kube.http.post(f"{kube.base}/apis/apps/v1/namespaces/{namespace}/statefulsets", json={
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
        "spec": {"replicas": 2, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "shard", "image": "kinto-rs"}]}}}}, timeout=30)
    assert r.status_code == 201, r.text


def create_cluster(kube, namespace, name, port, batch):
    """A KintoCluster of 2 shards at 127.0.1.<index>:`port`, scaling the StatefulSet `shards`; returns its name."""
    r = kube.http.post(cluster_url(kube, namespace=namespace), json={
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "KintoCluster", "metadata": {"name": name},
        "spec": {"shards": 2, "shardAddressTemplate": f"http://127.0.1.{{index}}:{port}",
                 "moveBatchSlots": batch, "shardStatefulSet": "shards"}}, timeout=30)
    assert r.status_code == 201, r.text
    return name


def start_gateway(procs, env, port, tmp_path):
    """A gateway in front of shards 0 and 1 at 127.0.1.<i>:`port` (it learns the others from the map); its URL once
    it answers."""
    gateway_port = free_port()
    procs["gateway"] = spawn([str(BIN / "kinto-gateway")], {
        **env, "KINTO_BIND": f"127.0.0.1:{gateway_port}", "KINTO_PLACEMENT_POLL_MS": "100",
        "KINTO_SHARD_URLS": ",".join(f"http://127.0.1.{i}:{port}" for i in range(2))}, tmp_path / "gateway.log")
    url = f"http://127.0.0.1:{gateway_port}/v1"

    def up():
        try:
            return requests.get(f"{url}/__heartbeat__", timeout=5).status_code == 200
        except requests.ConnectionError:
            return False
    wait_for(up, 60, "the gateway")
    return url


def replicas_of(kube, namespace, name):
    r = kube.http.get(f"{kube.base}/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["spec"]["replicas"]


@pytest.mark.parametrize("backend", ["embedded", "cql"])
def test_the_operator_moves_slots_to_the_shards_its_spec_asks_for(kube, tmp_path, backend):
    """Growing `spec.shards` from 2 to 4 names the new shards in the map, then grows the shards' StatefulSet
    (whose processes the test then starts, as a kubelet would), and moves a quarter of the slots to each, even
    though the leading operator replica is killed in the middle (its successor resumes; the other replica moved
    nothing while it led); shrinking to 3 moves shard 3's slots
    away, drops it from the map and only then shrinks the StatefulSet. The data written before is read back
    through the gateway after each change.

    embedded: one placement directory, given to the operator as `operator_placement_dir`. cql: the map is in
    the keyspace; the operator links no driver and changes it through the shards (ShardAdmin.SwapMap), and the
    shards run with `placement_managed` and the seed count 2 whatever the map says, as the Helm chart starts
    them."""
    if backend == "cql" and not cql_contact_point():
        pytest.skip("the cql backend needs KINTO_TEST_CQL=host:port (tests/run starts Cassandra)")
    install_crd(kube)
    namespace = f"kinto-moves-{backend}"
    r = kube.http.post(f"{kube.base}/api/v1/namespaces", json={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, timeout=30)
    assert r.status_code == 201, r.text
    create_statefulset(kube, namespace, "shards")
    port = free_port()
    placement = tmp_path / "placement"
    procs = {}
    settings = _env_settings({"userid_hmac_secret": "operator-test", "bucket_create_principals":
                              "system.Authenticated", "multiauth_policies": "basicauth"})
    if backend == "cql":
        keyspace = "t_operator_" + os.urandom(4).hex()
        store = {"KINTO_STORAGE_BACKEND": "cql", "KINTO_CQL_CONTACT_POINTS": cql_contact_point(),
                 "KINTO_CQL_KEYSPACE": keyspace, "KINTO_CQL_REQUEST_TIMEOUT_MS": "20000", **cql_login()}
        subprocess.run([str(BIN / "kinto-shard"), "migrate"], env={**_clean_env(), **store}, check=True,
                       capture_output=True, timeout=120)
        shard_store, gateway_store, operator_store = {**store, "KINTO_PLACEMENT_MANAGED": "true"}, {}, {}
    else:
        shard_store = gateway_store = {"KINTO_PLACEMENT_DIR": str(placement)}
        operator_store = {"KINTO_OPERATOR_PLACEMENT_DIR": str(placement)}

    def start_shard(i, count):
        procs[i] = spawn([str(BIN / "kinto-shard")], {
            **settings, **shard_store, "KINTO_BIND": f"127.0.1.{i}:{port}",
            "KINTO_DATA_DIR": str(tmp_path / f"shard-{i}"), "KINTO_SHARD_INDEX": str(i),
            "KINTO_SHARD_COUNT": str(2 if backend == "cql" else count), "KINTO_PLACEMENT_POLL_MS": "50"},
            tmp_path / f"shard-{i}.log")

    def stored_map():
        if backend == "embedded":
            return json.loads((placement / "map.json").read_text())
        out = subprocess.run([str(BIN / "kinto-shard"), "admin", "map"], env={**_clean_env(), **store},
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    try:
        for i in range(2):
            start_shard(i, 2)
        url = start_gateway(procs, {**settings, **gateway_store}, port, tmp_path)
        auth = ("alice", "secret")
        written = {}
        for b in range(24):
            requests.put(f"{url}/buckets/ob{b}", auth=auth, timeout=30).raise_for_status()
            requests.put(f"{url}/buckets/ob{b}/collections/c", auth=auth, timeout=30).raise_for_status()
            r = requests.put(f"{url}/buckets/ob{b}/collections/c/records/r", json={"data": {"b": b}}, auth=auth,
                             timeout=30)
            assert r.status_code == 201, r.text
            written[b] = r.json()["data"]["last_modified"]

        def all_readable():
            for b, stamp in written.items():
                r = requests.get(f"{url}/buckets/ob{b}/collections/c/records/r", auth=auth, timeout=30)
                assert r.status_code == 200, (b, r.status_code, r.text)
                assert r.json()["data"]["last_modified"] == stamp
        all_readable()

        name = create_cluster(kube, namespace, "moves", port, batch=64)
        def start_operator(who):
            procs[who] = spawn([str(BIN / "kinto-operator")], {
                **operator_store, "KUBECONFIG": str(kube.dir / "kubeconfig"), "KINTO_OPERATOR_NAMESPACE": namespace,
                "KINTO_OPERATOR_IDENTITY": who, "KINTO_OPERATOR_LEASE_SECONDS": str(LEASE_SECONDS),
                "KINTO_OPERATOR_POLL_SECONDS": "1", "KINTO_OPERATOR_FREEZE_TIMEOUT_SECONDS": "2"},
                tmp_path / f"{who}.log")
        # Two replicas, as the chart runs them: one leads and moves, the other waits.
        for who in ("op-a", "op-b"):
            start_operator(who)
        status = wait_for(lambda: (s := status_of(kube, name, namespace)).get("phase") == "Balanced" and s, 60,
                          "a Balanced status")
        assert replicas_of(kube, namespace, "shards") == 2
        leader = status["leader"]
        standby = next(w for w in ("op-a", "op-b") if w != leader)

        # 2 -> 4: the operator names shards 2 and 3 in the map, then grows the StatefulSet, whose new pods can
        # only start once the map names them.
        set_shards(kube, name, 4, namespace)
        wait_for(lambda: replicas_of(kube, namespace, "shards") == 4, 60, "the StatefulSet to grow")
        assert {"2", "3"} <= set(stored_map()["shards"])
        for i in (2, 3):
            start_shard(i, 4)
        # The leader dies in the middle of the moves (and is started again, as a Deployment would): a successor
        # (after the lease) resumes them from the map. Until then the standby moved nothing.
        wait_for(lambda: stored_map().get("moving"), 60, "a batch moving")
        procs[leader].kill()
        procs[leader].wait()
        batch_lines = ("announced", "resuming", "handed off", "rolled back")
        assert any(w in (tmp_path / f"{leader}.log").read_text() for w in batch_lines)
        before = (tmp_path / f"{standby}.log").read_text()
        assert not any(w in before for w in batch_lines), "two replicas moved slots at once:\n" + before
        start_operator("restarted")
        status = wait_for(lambda: (s := status_of(kube, name, namespace)).get("phase") == "Balanced"
                          and s.get("slotsPerShard") == [1024] * 4 and s, 180, "the data spread over 4 shards")
        assert status["leader"] in (standby, "restarted")
        assert 0 < status["slotsMoved"] <= 2048
        assert not stored_map().get("moving")
        all_readable()

        # 4 -> 3: shard 3's slots go to the others, then the map drops it, and only then its pod goes.
        set_shards(kube, name, 3, namespace)
        def shard_3_gone():
            replicas = replicas_of(kube, namespace, "shards")
            named = "3" in stored_map()["shards"]
            assert replicas == 4 or not named, "the StatefulSet shrank while the map still names shard 3"
            return replicas == 3
        wait_for(shard_3_gone, 180, "the StatefulSet to shrink")
        # Shards read the map the retirement wrote on their next poll; the status settles on Balanced.
        wait_for(lambda: (s := status_of(kube, name, namespace)).get("phase") == "Balanced"
                 and s.get("slotsPerShard") == [1366, 1365, 1365] and s, 60, "3 shards balanced")
        stop(procs.pop(3))
        all_readable()
    finally:
        for proc in procs.values():
            stop(proc)


def test_the_operator_fences_a_cql_shard_that_does_not_answer(kube, tmp_path):
    """docs/placement.md section 6, path 2, run by the operator, which links no database driver: shard 0 is
    SIGSTOPped once the rebalance from 2 to 3 shards has begun, so it cannot freeze its next batch. The operator
    asks another shard to revoke shard 0's role (ShardAdmin.Fence), waits out its grace and hands the batch to
    shard 2.
    Resumed, shard 0's next commit is refused and it stops; started again, it serves the slots it kept, and what
    was written before is read back."""
    if not cql_contact_point():
        pytest.skip("the cql backend needs KINTO_TEST_CQL=host:port (tests/run starts Cassandra)")
    install_crd(kube)
    namespace = "kinto-fence"
    r = kube.http.post(f"{kube.base}/api/v1/namespaces", json={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, timeout=30)
    assert r.status_code == 201, r.text
    create_statefulset(kube, namespace, "shards")
    store = {"KINTO_STORAGE_BACKEND": "cql", "KINTO_CQL_CONTACT_POINTS": cql_contact_point(),
             "KINTO_CQL_KEYSPACE": "t_fence_" + os.urandom(4).hex(), "KINTO_CQL_REQUEST_TIMEOUT_MS": "20000",
             **cql_login()}
    subprocess.run([str(BIN / "kinto-shard"), "migrate"], env={**_clean_env(), **store}, check=True,
                   capture_output=True, timeout=120)
    port, procs, starts = free_port(), {}, {}
    settings = _env_settings({"userid_hmac_secret": "operator-test", "bucket_create_principals":
                              "system.Authenticated", "multiauth_policies": "basicauth"})

    def start_shard(i):
        # Roles of their own, and a lease shorter than the operator's grace (tools/cassandra caches permissions 1 s).
        starts[i] = starts.get(i, 0) + 1
        procs[i] = spawn([str(BIN / "kinto-shard")], {
            **settings, **store, "KINTO_CQL_SHARD_ROLES": "true", "KINTO_PLACEMENT_MANAGED": "true",
            "KINTO_PLACEMENT_LEASE_SECONDS": "2", "KINTO_BIND": f"127.0.1.{i}:{port}",
            "KINTO_DATA_DIR": str(tmp_path / f"shard-{i}"), "KINTO_SHARD_INDEX": str(i), "KINTO_SHARD_COUNT": "2",
            "KINTO_PLACEMENT_POLL_MS": "50"}, tmp_path / f"shard-{i}-{starts[i]}.log")

    def stored_map():
        out = subprocess.run([str(BIN / "kinto-shard"), "admin", "map"], env={**_clean_env(), **store},
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def slot_counts():
        runs = stored_map()["owners"] + [[4096, None]]
        counts = {}
        for (first, owner), (end, _) in zip(runs, runs[1:]):
            counts[owner] = counts.get(owner, 0) + end - first
        return counts

    try:
        for i in range(2):
            start_shard(i)
        url = start_gateway(procs, settings, port, tmp_path)
        auth = ("alice", "secret")
        written = {}
        for b in range(16):
            r = requests.put(f"{url}/buckets/fb{b}", json={"data": {"b": b}}, auth=auth, timeout=30)
            assert r.status_code == 201, r.text
            written[b] = r.json()["data"]["last_modified"]
        name = create_cluster(kube, namespace, "fence", port, batch=128)
        procs["operator"] = spawn([str(BIN / "kinto-operator")], {
            "KUBECONFIG": str(kube.dir / "kubeconfig"), "KINTO_OPERATOR_NAMESPACE": namespace,
            "KINTO_OPERATOR_IDENTITY": "op", "KINTO_OPERATOR_LEASE_SECONDS": str(LEASE_SECONDS),
            "KINTO_OPERATOR_POLL_SECONDS": "1", "KINTO_OPERATOR_FREEZE_TIMEOUT_SECONDS": "1",
            "KINTO_OPERATOR_FENCE_GRACE_SECONDS": "3"}, tmp_path / "operator.log")
        wait_for(lambda: status_of(kube, name, namespace).get("phase") == "Balanced", 60, "a Balanced status")

        set_shards(kube, name, 3, namespace)
        wait_for(lambda: replicas_of(kube, namespace, "shards") == 3, 60, "the StatefulSet to grow")
        start_shard(2)
        # The operator starts moves only while every wanted shard answers; once they run, shard 0 stops answering.
        deadline = time.monotonic() + 60
        while "announced" not in (tmp_path / "operator.log").read_text():
            assert time.monotonic() < deadline, "no batch announced"
            time.sleep(0.01)
        procs[0].send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: sorted(slot_counts().items()) in ([(0, 1365), (1, 1366), (2, 1365)],
                                                               [(0, 1366), (1, 1365), (2, 1365)])
                     and "moving" not in stored_map(), 180, "the slots of the stopped shard 0 handed over")
        finally:
            procs[0].send_signal(signal.SIGCONT)
        log = (tmp_path / "operator.log").read_text()
        assert "shard 0 did not freeze" in log and "fenced shard 0 (MODIFY revoked" in log, log[-3000:]
        # Its next commit, under the revoked role, is refused, and it stops.
        table = owners(stored_map())
        kept = next(f"kept{i}" for i in range(100000) if table[slot(f"kept{i}")] == 0)
        requests.put(f"{url}/buckets/{kept}", auth=auth, timeout=60)
        assert procs[0].wait(timeout=60) != 0
        assert "fenced" in (tmp_path / "shard-0-1.log").read_text()
        start_shard(0)
        r = requests.put(f"{url}/buckets/{kept}", json={"data": {"after": True}}, auth=auth, timeout=60)
        assert r.status_code in (200, 201), r.text
        wait_for(lambda: (s := status_of(kube, name, namespace)).get("phase") == "Balanced"
                 and sorted(s.get("slotsPerShard") or []) == [1365, 1365, 1366], 60, "3 shards balanced")
        for b, stamp in written.items():
            r = requests.get(f"{url}/buckets/fb{b}", auth=auth, timeout=30)
            assert r.status_code == 200 and r.json()["data"]["last_modified"] == stamp, (b, r.text)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
            stop(proc)
