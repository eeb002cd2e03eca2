"""The Helm chart (issue 20): `helm lint`, what `helm template` renders, and a real kube-apiserver's verdict.

helm comes from tools/helm/setup; kube-apiserver and etcd from tools/kube/setup (both built from the Go module
proxy into a cache outside the clone). Every manifest rendered with the default values and with each file of
helm/kinto-rs/ci/ goes through a server-side dry run with strict field validation, so a misspelt field or a
value the API refuses fails here, not at an operator's install. Needs no Rust binary and no target.
By hand, run tools/helm/setup and tools/kube/setup once first (tests/run does): their cold builds take longer
than pytest's per-test timeout.
"""

import base64
import json
import os
import subprocess

import pytest
import yaml

from harness import REPO
from kube import running, tool

CHART = REPO / "helm/kinto-rs"
NAMESPACE = "kinto"
RELEASE = "kinto"
CASES = {
    "default": [],
    "embedded": ["-f", str(CHART / "ci/embedded-values.yaml")],
    "cql": ["-f", str(CHART / "ci/cql-values.yaml")],
    "cql-existing-secrets": ["-f", str(CHART / "ci/cql-existing-secrets-values.yaml")],
}


@pytest.fixture(scope="module")
def helm():
    return tool("KINTO_TEST_HELM", "tools/helm/setup")


def run_helm(helm, *args, check=True, env=None):
    r = subprocess.run([helm, *args], capture_output=True, text=True, timeout=120,
                       env={**os.environ, **(env or {})})
    if check:
        assert r.returncode == 0, f"helm {' '.join(args)}:\n{r.stdout}\n{r.stderr}"
    return r


def render(helm, *values):
    out = run_helm(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *values).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="module")
def rendered(helm):
    return {case: render(helm, *values) for case, values in CASES.items()}


def one(docs, kind, suffix=""):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, f"{kind} *{suffix}: {[d['metadata']['name'] for d in found]}"
    return found[0]


def container(workload):
    return workload["spec"]["template"]["spec"]["containers"][0]


def configmap(docs, component):
    return one(docs, "ConfigMap", f"-{component}")["data"]


def values_file(case):
    return yaml.safe_load((CHART / f"ci/{case}-values.yaml").read_text()) if case != "default" else {}


def is_cql(case):
    return values_file(case).get("storage", {}).get("backend") == "cql"


# --- helm lint and template ---------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_lint_is_clean(helm, case):
    r = run_helm(helm, "lint", "--strict", str(CHART), *CASES[case])
    assert "0 chart(s) failed" in r.stdout, r.stdout


@pytest.mark.parametrize("case", CASES)
def test_shard_identities_agree_with_the_gateways_shard_urls(rendered, case):
    docs = rendered[case]
    sts = one(docs, "StatefulSet", "-shard")
    replicas = sts["spec"]["replicas"]
    assert replicas == values_file(case).get("shards", {}).get("replicas", 4)
    shard_cfg, gateway_cfg = configmap(docs, "shard"), configmap(docs, "gateway")
    assert json.loads(shard_cfg["KINTO_SHARD_COUNT"]) == replicas
    # Each pod's shard_index is its ordinal, read from the label the StatefulSet controller sets.
    env = {e["name"]: e for e in container(sts).get("env", [])}
    assert env["KINTO_SHARD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.labels['apps.kubernetes.io/pod-index']"
    # shard_urls lists every ordinal, in order, at the pod's stable name under the headless Service.
    headless = one(docs, "Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    port = next(p["containerPort"] for p in container(sts)["ports"] if p["name"] == "grpc")
    assert shard_cfg["KINTO_BIND"] == f"0.0.0.0:{port}"
    scheme = "https" if values_file(case).get("mtls", {}).get("enabled") else "http"
    name, service = sts["metadata"]["name"], headless["metadata"]["name"]
    assert gateway_cfg["KINTO_SHARD_URLS"].split(",") == [
        f"{scheme}://{name}-{i}.{service}.{NAMESPACE}.svc.cluster.local:{port}" for i in range(replicas)]


def test_embedded_shards_keep_their_store_on_their_own_volume(rendered):
    docs = rendered["embedded"]
    sts = one(docs, "StatefulSet", "-shard")
    claims = sts["spec"]["volumeClaimTemplates"]
    assert [c["metadata"]["name"] for c in claims] == ["data"]
    assert claims[0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert claims[0]["spec"]["storageClassName"] == "standard"
    mounts = {m["name"]: m["mountPath"] for m in container(sts)["volumeMounts"]}
    cfg = configmap(docs, "shard")
    assert cfg["KINTO_STORAGE_BACKEND"] == "embedded"
    assert mounts["data"] == cfg["KINTO_DATA_DIR"] == "/data"
    assert not [d for d in docs if d["kind"] == "Job"]
    # Scaling down or uninstalling must not delete a shard's data.
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}


def test_cql_renders_the_migration_hook_and_no_volume(rendered):
    docs = rendered["cql"]
    sts = one(docs, "StatefulSet", "-shard")
    assert "volumeClaimTemplates" not in sts["spec"]
    assert "data" not in {m["name"] for m in container(sts)["volumeMounts"]}
    job = one(docs, "Job", "-migrate")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert container(job)["command"] == ["kinto-shard", "migrate"]
    # The hook runs before the release's ConfigMaps exist: it carries the CQL settings itself, the same as the
    # shards', and its password comes from a hook Secret created just before it (lower weight).
    job_env = {e["name"]: e["value"] for e in container(job)["env"]}
    shard_cfg = configmap(docs, "shard")
    for key in ("KINTO_STORAGE_BACKEND", "KINTO_CQL_CONTACT_POINTS", "KINTO_CQL_KEYSPACE", "KINTO_CQL_REPLICATION",
                "KINTO_CQL_CONSISTENCY", "KINTO_CQL_USERNAME", "KINTO_CQL_TLS_CA_FILE"):
        assert job_env[key] == shard_cfg[key], key
    assert shard_cfg["KINTO_STORAGE_BACKEND"] == "cql"
    assert shard_cfg["KINTO_CQL_REPLICATION"] == "{'class': 'NetworkTopologyStrategy', 'dc1': 3}"
    # Each shard under a role of its own, which the operator has fenced through another shard after its grace.
    assert shard_cfg["KINTO_CQL_SHARD_ROLES"] == "true"
    operator_env = {e["name"]: e.get("value") for e in container(one(docs, "Deployment", "-operator"))["env"]}
    assert operator_env["KINTO_OPERATOR_FENCE_GRACE_SECONDS"] == "30"
    hook_secret = one(docs, "Secret", "-migrate")
    assert [e["secretRef"]["name"] for e in container(job)["envFrom"]] == [hook_secret["metadata"]["name"]]
    assert int(hook_secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < \
        int(annotations["helm.sh/hook-weight"])
    assert base64.b64decode(hook_secret["data"]["KINTO_CQL_PASSWORD"]).decode() == "ci-cql-password-value"


@pytest.mark.parametrize("case", CASES)
def test_network_policy_lets_only_gateways_and_the_operator_reach_shards(rendered, case):
    docs = rendered[case]
    policy = one(docs, "NetworkPolicy", "-shard")["spec"]
    shard_labels = one(docs, "StatefulSet", "-shard")["spec"]["template"]["metadata"]["labels"]
    gateway_labels = one(docs, "Deployment", "-gateway")["spec"]["template"]["metadata"]["labels"]
    operator_labels = one(docs, "Deployment", "-operator")["spec"]["template"]["metadata"]["labels"]
    selects = policy["podSelector"]["matchLabels"].items()
    assert selects <= shard_labels.items()
    assert not selects <= gateway_labels.items()
    assert policy["policyTypes"] == ["Ingress"]
    grpc_rules = [rule for rule in policy["ingress"] if rule["ports"] == [{"port": "grpc", "protocol": "TCP"}]]
    assert len(grpc_rules) == 1
    peers = grpc_rules[0]["from"]
    # The gateways (Kinto's API) and the operator (the shards' admin API), each matched alone.
    assert len(peers) == 2 and all(set(p) == {"podSelector"} for p in peers)
    gateways, operator = (p["podSelector"]["matchLabels"].items() for p in peers)
    assert gateways <= gateway_labels.items() and not gateways <= operator_labels.items()
    assert operator <= operator_labels.items() and not operator <= gateway_labels.items()
    for allowed in (gateways, operator):
        assert not allowed <= shard_labels.items()
    # Other rules (metrics scraping) open only the metrics port.
    assert all(rule["ports"] == [{"port": "metrics", "protocol": "TCP"}] for rule in policy["ingress"]
               if rule is not grpc_rules[0])


@pytest.mark.parametrize("case", CASES)
def test_probes_ask_the_right_endpoints(rendered, case):
    docs = rendered[case]
    gateway = container(one(docs, "Deployment", "-gateway"))
    ports = {p["name"]: p["containerPort"] for p in gateway["ports"]}
    assert configmap(docs, "gateway")["KINTO_BIND"] == f"0.0.0.0:{ports['http']}"
    assert gateway["livenessProbe"]["httpGet"] == {"path": "/v1/__lbheartbeat__", "port": "http"}
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/v1/__heartbeat__", "port": "http"}
    shard = container(one(docs, "StatefulSet", "-shard"))
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert shard[probe]["tcpSocket"] == {"port": "grpc"}, probe
    for c in (gateway, shard):
        assert c["resources"]["requests"] and c["resources"]["limits"]
        assert c["securityContext"]["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize("case", ["embedded", "cql"])
def test_no_secret_value_in_a_configmap(rendered, case):
    docs = rendered[case]
    values = values_file(case)
    secrets = [v for v in values.get("secrets", {}).values() if v]
    secrets += [v for k, v in values.get("storage", {}).get("cql", {}).items() if k == "password"]
    secrets += [v for k, v in values.get("mtls", {}).get("pem", {}).items() if k.endswith("Key")]
    secrets = [s.split("\n")[1] if s.startswith("-----") else s for s in secrets]  # a key's body
    assert len(secrets) >= 2
    plain = "\n".join(json.dumps(d) for d in docs if d["kind"] == "ConfigMap")
    in_secrets = "\n".join(base64.b64decode(v).decode() for d in docs if d["kind"] == "Secret"
                           for v in d.get("data", {}).values())
    for s in secrets:
        assert s not in plain
        assert s in in_secrets, f"{s!r} reaches no Secret"
    settings_secret = one(docs, "Secret", "-settings")
    assert "KINTO_USERID_HMAC_SECRET" in settings_secret["data"]
    for workload in (one(docs, "Deployment", "-gateway"), one(docs, "StatefulSet", "-shard")):
        refs = [e.get("secretRef", {}).get("name") for e in container(workload)["envFrom"]]
        assert settings_secret["metadata"]["name"] in refs


def test_secrets_managed_outside_the_chart_are_referenced_not_rendered(rendered):
    docs = rendered["cql-existing-secrets"]
    assert not [d for d in docs if d["kind"] == "Secret"]
    for workload in (one(docs, "Deployment", "-gateway"), one(docs, "StatefulSet", "-shard"), one(docs, "Job")):
        assert [e["secretRef"]["name"] for e in container(workload)["envFrom"] if "secretRef" in e] == \
            ["kinto-secrets"]
    for workload in (one(docs, "Deployment", "-gateway"), one(docs, "StatefulSet", "-shard")):
        volume = next(v for v in workload["spec"]["template"]["spec"]["volumes"] if v["name"] == "mtls")
        assert volume["secret"]["secretName"] == "kinto-mtls"
    shard = container(one(docs, "StatefulSet", "-shard"))
    assert [p["name"] for p in shard["ports"]] == ["grpc"]
    assert "KINTO_METRICS_BIND" not in configmap(docs, "shard")


def test_a_secret_given_as_a_plain_setting_is_refused(helm):
    r = run_helm(helm, "template", RELEASE, str(CHART), "--set", "settings.userid_hmac_secret=oops", check=False)
    assert r.returncode != 0
    assert "secrets" in r.stderr and "oops" not in r.stdout


def test_a_missing_hmac_secret_is_generated(rendered):
    secret = one(rendered["default"], "Secret", "-settings")
    assert len(base64.b64decode(secret["data"]["KINTO_USERID_HMAC_SECRET"])) == 64


def test_mtls_certificates_reach_both_sides(rendered):
    docs = rendered["embedded"]
    secret = one(docs, "Secret", "-mtls")
    assert set(secret["data"]) == {"ca.crt", "gateway.crt", "gateway.key", "shard.crt", "shard.key"}
    for workload, side in ((one(docs, "Deployment", "-gateway"), "gateway"), (one(docs, "StatefulSet", "-shard"), "shard")):
        volume = next(v for v in workload["spec"]["template"]["spec"]["volumes"] if v["name"] == "mtls")
        assert volume["secret"]["secretName"] == secret["metadata"]["name"]
        assert {i["key"] for i in volume["secret"]["items"]} == {"ca.crt", f"{side}.crt", f"{side}.key"}
        files = {v for k, v in configmap(docs, side).items() if k.startswith("KINTO_GRPC_") and k.endswith("_FILE")}
        assert "KINTO_GRPC_INSECURE" not in configmap(docs, side)
        assert files == {f"/etc/kinto/mtls/{i['path']}" for i in volume["secret"]["items"]}
    assert not [d for d in rendered["default"] if d["metadata"]["name"].endswith("-mtls")]
    # Without mtls, pods off loopback need the explicit plaintext setting or the binaries refuse to start.
    for side in ("gateway", "shard"):
        assert configmap(rendered["default"], side)["KINTO_GRPC_INSECURE"] == "true"


@pytest.mark.parametrize("case", CASES)
def test_gateways_autoscale_and_both_tiers_have_disruption_budgets(rendered, case):
    docs = rendered[case]
    gateway = one(docs, "Deployment", "-gateway")
    hpas = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    if case == "cql":  # autoscaling off: the Deployment holds the replica count instead
        assert not hpas and gateway["spec"]["replicas"] == 3
    else:
        assert [h["spec"]["scaleTargetRef"]["name"] for h in hpas] == [gateway["metadata"]["name"]]
        assert "replicas" not in gateway["spec"]
    for suffix, workload in (("-gateway", gateway), ("-shard", one(docs, "StatefulSet", "-shard"))):
        pdb = one(docs, "PodDisruptionBudget", suffix)
        assert pdb["spec"]["selector"]["matchLabels"].items() <= \
            workload["spec"]["template"]["metadata"]["labels"].items()
    assert one(docs, "PodDisruptionBudget", "-shard")["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("case", CASES)
def test_the_operator_watches_a_cluster_of_the_charts_shards(rendered, case):
    docs = rendered[case]
    cluster = one(docs, "KintoCluster")
    sts = one(docs, "StatefulSet", "-shard")
    assert cluster["spec"]["shards"] == sts["spec"]["replicas"]
    urls = configmap(docs, "gateway")["KINTO_SHARD_URLS"].split(",")
    template = cluster["spec"]["shardAddressTemplate"]
    assert [template.replace("{index}", str(i)) for i in range(len(urls))] == urls
    operator = one(docs, "Deployment", "-operator")
    pod = operator["spec"]["template"]["spec"]
    env = {e["name"]: e for e in container(operator)["env"]}
    # Each replica is named by its pod in the Lease; the namespace is the release's.
    assert env["KINTO_OPERATOR_IDENTITY"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["KINTO_OPERATOR_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    account = one(docs, "ServiceAccount", "-operator")["metadata"]["name"]
    assert pod["serviceAccountName"] == account
    binding = one(docs, "RoleBinding", "-operator")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]
    role = one(docs, "Role", "-operator")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    granted = {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"]
               for r in rule["resources"]}
    expected = {
        ("kinto-rs.dev", "kintoclusters"): {"get", "list", "watch"},
        ("kinto-rs.dev", "kintoclusters/status"): {"get", "patch", "update"},
        ("coordination.k8s.io", "leases"): {"get", "create", "update"},
        ("events.k8s.io", "events"): {"create", "patch"},
    }
    if is_cql(case):  # the operator sizes the shards' StatefulSet there, and only there
        expected[("apps", "statefulsets")] = {"get", "list", "watch"}
        expected[("apps", "statefulsets/scale")] = {"get", "patch", "update"}
    assert granted == expected
    if values_file(case).get("mtls", {}).get("enabled"):
        assert env["KINTO_GRPC_CLIENT_CERT_FILE"]["value"].startswith("/etc/kinto/mtls/")


@pytest.mark.parametrize("case", CASES)
def test_on_cql_the_operator_owns_the_shard_count(rendered, case):
    """On CQL the shards share the map in the keyspace, so the operator reshards: the map decides the count
    (placement_managed; shard_count only seeds it) and the KintoCluster names the StatefulSet the operator sizes.
    The embedded store's map is a file per machine: its count stays static."""
    docs = rendered[case]
    shard_cfg = configmap(docs, "shard")
    cluster = one(docs, "KintoCluster")
    sts = one(docs, "StatefulSet", "-shard")
    # A first install (no live release to look up) seeds the map with shards.replicas.
    assert json.loads(shard_cfg["KINTO_SHARD_COUNT"]) == sts["spec"]["replicas"] == cluster["spec"]["shards"]
    if is_cql(case):
        assert shard_cfg["KINTO_PLACEMENT_MANAGED"] == "true"
        assert cluster["spec"]["shardStatefulSet"] == sts["metadata"]["name"]
    else:
        assert "KINTO_PLACEMENT_MANAGED" not in shard_cfg
        assert "shardStatefulSet" not in cluster["spec"]


def test_cql_without_the_operator_keeps_a_static_map(helm):
    docs = render(helm, *CASES["cql"], "--set", "operator.enabled=false")
    assert not [d for d in docs if d["kind"] in ("KintoCluster", "Role")]
    shard_cfg = configmap(docs, "shard")
    assert "KINTO_PLACEMENT_MANAGED" not in shard_cfg
    assert json.loads(shard_cfg["KINTO_SHARD_COUNT"]) == one(docs, "StatefulSet", "-shard")["spec"]["replicas"] == 5


@pytest.mark.parametrize("case", ["embedded", "cql"])
def test_each_tier_rolls_on_a_change_of_its_own_settings(helm, rendered, case):
    """The shards' checksum covers their ConfigMap alone: a gateway-only change (as the gateways' shard_urls on a
    CQL reshard) rolls no shard, and a shard setting still rolls them."""
    def checksums(docs):
        return {w["metadata"]["name"]: w["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
                for w in (one(docs, "Deployment", "-gateway"), one(docs, "StatefulSet", "-shard"))}

    base = checksums(rendered[case])
    gateway_name, shard_name = (f"{RELEASE}-kinto-rs-{c}" for c in ("gateway", "shard"))
    gateway_only = checksums(render(helm, *CASES[case], "--set", "gateway.settings.paginate_by=7"))
    assert gateway_only[shard_name] == base[shard_name]
    assert gateway_only[gateway_name] != base[gateway_name]
    shard_only = checksums(render(helm, *CASES[case], "--set", "shards.settings.paginate_by=7"))
    assert shard_only[shard_name] != base[shard_name]


# --- a real kube-apiserver ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kube():
    with running(NAMESPACE) as k:
        # As `helm install` does: the chart's CRDs first, so its KintoCluster can be checked against them.
        for path in sorted((CHART / "crds").glob("*.yaml")):
            crd = yaml.safe_load(path.read_text())
            r = k.http.post(f"{k.base}/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd,
                            params={"fieldValidation": "Strict"}, timeout=30)
            assert r.status_code == 201, r.text
        yield k


def test_the_api_server_refuses_what_it_should(kube, rendered):
    """The dry run below is a real check: the same server refuses a misspelt field and an invalid value."""
    sts = json.loads(json.dumps(one(rendered["default"], "StatefulSet", "-shard")))
    sts["spec"]["replica"] = 3
    r = kube.dry_run(sts, NAMESPACE)
    assert r.status_code in (400, 422) and "replica" in r.text, r.text
    sts = json.loads(json.dumps(one(rendered["default"], "StatefulSet", "-shard")))
    sts["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] = "other"
    r = kube.dry_run(sts, NAMESPACE)
    assert r.status_code == 422 and "selector" in r.text, r.text


@pytest.mark.parametrize("case", CASES)
def test_every_rendered_manifest_passes_a_server_side_dry_run(kube, rendered, case):
    refused = []
    for manifest in rendered[case]:
        r = kube.dry_run(manifest, NAMESPACE)
        if r.status_code != 201:
            refused.append(f"{manifest['kind']} {manifest['metadata']['name']}: {r.status_code} {r.text[:600]}")
    assert not refused, "\n".join(refused)
    assert len(rendered[case]) >= 10


def helm_env(kube):
    """helm against this API server, with its own cache and config (nothing of the user's)."""
    return {"KUBECONFIG": str(kube.dir / "kubeconfig"), "HELM_CACHE_HOME": str(kube.dir / "helm-cache"),
            "HELM_CONFIG_HOME": str(kube.dir / "helm-config"), "HELM_DATA_HOME": str(kube.dir / "helm-data")}


def test_helm_install_and_upgrade_keep_the_generated_secret(kube, helm):
    """A real `helm install` then `helm upgrade` (no hooks with the embedded store): the generated
    userid_hmac_secret must survive the upgrade, or every basicauth user id would change."""
    env = helm_env(kube)
    release, namespace = "upg", "kinto-upgrade"
    common = [str(CHART), "--namespace", namespace, "--set", "shards.replicas=2"]
    run_helm(helm, "install", release, *common, "--create-namespace", env=env)

    def hmac_secret():
        r = kube.http.get(f"{kube.base}/api/v1/namespaces/{namespace}/secrets/{release}-kinto-rs-settings", timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["data"]["KINTO_USERID_HMAC_SECRET"]

    first = hmac_secret()
    run_helm(helm, "upgrade", release, *common, "--set", "settings.paginate_by=50", env=env)
    assert hmac_secret() == first
    r = kube.http.get(f"{kube.base}/api/v1/namespaces/{namespace}/configmaps/{release}-kinto-rs-gateway", timeout=30)
    assert r.json()["data"]["KINTO_PAGINATE_BY"] == "50"
    r = kube.http.get(f"{kube.base}/apis/apps/v1/namespaces/{namespace}/statefulsets/{release}-kinto-rs-shard",
                      timeout=30)
    assert r.json()["spec"]["replicas"] == 2
    # Another shard count would re-place buckets away from their data: refused without the explicit override.
    r = run_helm(helm, "upgrade", release, *common, "--set", "shards.replicas=3", env=env, check=False)
    assert r.returncode != 0 and "changing the shard count needs a rebalance" in r.stderr, r.stderr
    run_helm(helm, "upgrade", release, *common, "--set", "shards.replicas=3", "--set", "shards.allowCountChange=true",
             env=env)
    r = kube.http.get(f"{kube.base}/apis/apps/v1/namespaces/{namespace}/statefulsets/{release}-kinto-rs-shard",
                      timeout=30)
    assert r.json()["spec"]["replicas"] == 3


def test_helm_upgrade_reshards_a_cql_release_through_the_operator(kube, helm):
    """On CQL `helm upgrade --set shards.replicas=N` is the knob: the KintoCluster asks the operator for N shards,
    while the StatefulSet keeps the replicas that run (the operator scales it, once the map names the new shards)
    and the shards keep their settings (the seed of the map), so no shard pod rolls. No hooks: no kubelet runs
    the migration Job here."""
    env = helm_env(kube)
    release, namespace = "cqlup", "kinto-cql-upgrade"
    common = [str(CHART), "--namespace", namespace, *CASES["cql"], "--no-hooks"]
    full = f"{release}-kinto-rs"

    def get(path):
        r = kube.http.get(f"{kube.base}{path}", timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def shard_statefulset():
        return get(f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{full}-shard")

    def shard_config():
        return get(f"/api/v1/namespaces/{namespace}/configmaps/{full}-shard")["data"]

    def cluster():
        return get(f"/apis/kinto-rs.dev/v1alpha1/namespaces/{namespace}/kintoclusters/{full}")

    run_helm(helm, "install", release, *common, "--set", "shards.replicas=2", "--create-namespace", env=env)
    before = shard_statefulset()
    assert before["spec"]["replicas"] == 2 and cluster()["spec"]["shards"] == 2
    assert shard_config()["KINTO_SHARD_COUNT"] == "2"

    run_helm(helm, "upgrade", release, *common, "--set", "shards.replicas=3", env=env)
    spec = cluster()["spec"]
    assert spec["shards"] == 3
    assert spec["shardStatefulSet"] == f"{full}-shard" == before["metadata"]["name"]
    after = shard_statefulset()
    # helm leaves the pod count to the operator: no pod goes before its slots have moved.
    assert after["spec"]["replicas"] == 2
    shard_cfg = shard_config()
    assert shard_cfg["KINTO_SHARD_COUNT"] == "2"
    assert shard_cfg["KINTO_PLACEMENT_MANAGED"] == "true"
    # The pod template is unchanged (same settings checksum): the upgrade rolls no shard.
    assert after["spec"]["template"] == before["spec"]["template"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    # The gateways list the shards the release heads for.
    gateway_cfg = get(f"/api/v1/namespaces/{namespace}/configmaps/{full}-gateway")["data"]
    assert len(gateway_cfg["KINTO_SHARD_URLS"].split(",")) == 3

    # The apiserver's own verdict on the operator's Role: it may scale the shards' StatefulSet, and no more.
    def operator_may(verb, resource, subresource=""):
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
            "user": f"system:serviceaccount:{namespace}:{full}-operator",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
            "resourceAttributes": {"namespace": namespace, "verb": verb, "group": "apps", "resource": resource,
                                   "subresource": subresource, "name": f"{full}-shard"}}}
        r = kube.http.post(f"{kube.base}/apis/authorization.k8s.io/v1/subjectaccessreviews", json=review, timeout=30)
        assert r.status_code == 201, r.text
        return r.json()["status"]["allowed"]

    assert operator_may("patch", "statefulsets", "scale")
    assert operator_may("get", "statefulsets")
    assert not operator_may("patch", "statefulsets")
    assert not operator_may("delete", "statefulsets")

    # When the operator has scaled the StatefulSet, an upgrade keeps what runs (and the seed stays).
    r = kube.http.patch(f"{kube.base}/apis/apps/v1/namespaces/{namespace}/statefulsets/{full}-shard/scale",
                        json={"spec": {"replicas": 3}}, headers={"Content-Type": "application/merge-patch+json"},
                        timeout=30)
    assert r.status_code == 200, r.text
    run_helm(helm, "upgrade", release, *common, "--set", "shards.replicas=3", "--set", "settings.paginate_by=50",
             env=env)
    assert shard_statefulset()["spec"]["replicas"] == 3
    assert shard_config()["KINTO_SHARD_COUNT"] == "2"
    assert shard_config()["KINTO_PAGINATE_BY"] == "50"

    # Without the operator nothing would move the slots: a count change is refused, and says what to do.
    r = run_helm(helm, "upgrade", release, *common, "--set", "shards.replicas=4", "--set", "operator.enabled=false",
                 env=env, check=False)
    assert r.returncode != 0 and "operator.enabled=true" in r.stderr, r.stderr
    assert shard_statefulset()["spec"]["replicas"] == 3
