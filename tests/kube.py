"""A real kube-apiserver + etcd on loopback (tools/kube/setup builds them, tools/kube/run starts them), and a small
API client with the admin certificate: shared by the Helm chart's tests and the operator's."""

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from harness import REPO, free_port


def tool(env_var, script):
    """What tests/run exported in `env_var`, else the tool's last line (pytest started by hand)."""
    if os.environ.get(env_var):
        return os.environ[env_var]
    r = subprocess.run([str(REPO / script)], capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, f"{script} failed:\n{r.stderr[-3000:]}"
    return r.stdout.strip().splitlines()[-1]


class Kube:
    """An API client with the admin certificate tools/kube/run made."""

    def __init__(self, directory, port):
        self.dir, self.base = Path(directory), f"https://127.0.0.1:{port}"
        self.http = requests.Session()
        # REQUESTS_CA_BUNDLE and proxy variables would otherwise override the cluster's CA (and loopback).
        self.http.trust_env = False
        self.http.verify = str(self.dir / "ca.crt")
        self.http.cert = (str(self.dir / "admin.crt"), str(self.dir / "admin.key"))
        self._resources = {}

    def resource(self, api_version, kind):
        """(plural, namespaced) of a kind, from the server's discovery documents."""
        if api_version not in self._resources:
            path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            r = self.http.get(self.base + path, timeout=30)
            assert r.status_code == 200, f"discovery {path}: {r.status_code} {r.text}"
            self._resources[api_version] = {
                res["kind"]: (res["name"], res["namespaced"]) for res in r.json()["resources"] if "/" not in res["name"]}
        assert kind in self._resources[api_version], f"the server has no {kind} in {api_version}"
        return self._resources[api_version][kind]

    def collection(self, manifest, namespace):
        api_version = manifest["apiVersion"]
        plural, namespaced = self.resource(api_version, manifest["kind"])
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        return self.base + prefix + (f"/namespaces/{namespace}" if namespaced else "") + f"/{plural}"

    def dry_run(self, manifest, namespace):
        # Strict: a field the API does not know is an error, not silently dropped.
        return self.http.post(self.collection(manifest, namespace), json=manifest, timeout=30,
                              params={"dryRun": "All", "fieldValidation": "Strict"})




@contextlib.contextmanager
def running(namespace):
    """A fresh API server with `namespace` created, stopped on exit; skipped with KINTO_TEST_NO_KUBE=1 (not in CI)."""
    if os.environ.get("KINTO_TEST_NO_KUBE") == "1":
        if os.environ.get("CI"):
            pytest.fail("CI is set with KINTO_TEST_NO_KUBE=1: the Kubernetes checks would be skipped")
        pytest.skip("KINTO_TEST_NO_KUBE=1: the kube-apiserver checks are disabled")
    bin_dir = tool("KINTO_TEST_KUBE_BIN", "tools/kube/setup")
    directory = tempfile.mkdtemp(prefix="kinto-rs-kube-")
    port, etcd_port, peer_port = free_port(), free_port(), free_port()
    log = open(Path(directory) / "run.log", "w")
    proc = subprocess.Popen([str(REPO / "tools/kube/run"), directory, str(port), str(etcd_port), str(peer_port)],
                            env={**os.environ, "KINTO_TEST_KUBE_BIN": bin_dir}, stdout=log, stderr=log,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 150
        while not (Path(directory) / "kubeconfig").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("kube-apiserver did not start: " + (Path(directory) / "run.log").read_text()[-3000:]
                            + "\n" + (Path(directory) / "apiserver.log").read_text()[-3000:], pytrace=False)
            time.sleep(0.5)
        k = Kube(directory, port)
        r = k.http.post(f"{k.base}/api/v1/namespaces", json={
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, timeout=30)
        assert r.status_code == 201, r.text
        yield k
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        shutil.rmtree(directory, ignore_errors=True)
