"""The admin UI (issue 3): kinto-admin served at /v1/admin/, driven in Debian's Chromium.

A Kinto account signs in through the UI, creates a bucket, a collection and a record with the UI's forms; the
test then reads them back through the HTTP API. The same script runs against the reference Kinto given the same
kinto-admin build (`admin_assets_path`), which proves the script itself. Screenshots land in tests/output/.
"""

import http.client
import os
import re
import subprocess
from pathlib import Path

import pytest
import requests

from api import uid
from conftest import PLUGINS
from harness import OUTPUT, REPO, make_server

pytestmark = pytest.mark.targets("ref", "single")


def _tool(env_var, *cmd):
    """What tests/run exported in `env_var`, else the tool's last line (pytest started by hand)."""
    if os.environ.get(env_var):
        return os.environ[env_var]
    r = subprocess.run([str(REPO / cmd[0]), *cmd[1:]], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"{cmd[0]} failed:\n{r.stderr[-3000:]}"
    return r.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def admin_assets():
    """The kinto-admin build (tools/admin/fetch), in a cache outside the clone."""
    return _tool("KINTO_TEST_ADMIN_ASSETS", "tools/admin/fetch")


@pytest.fixture(scope="module")
def node_modules():
    """playwright-core for Debian's Chromium (tools/browser/setup), in a cache outside the clone."""
    if os.environ.get("KINTO_TEST_NO_BROWSER") == "1":
        pytest.skip("KINTO_TEST_NO_BROWSER=1: the Chromium test of the admin UI is disabled")
    return _tool("KINTO_TEST_NODE_MODULES", "tools/browser/setup")


@pytest.fixture
def admin_server(pool, target, admin_assets):
    """The session's `plugins` server when tests/run gave it the build, else one of our own with it."""
    if PLUGINS.get("admin_assets_path") == admin_assets:
        yield pool.get(target, "plugins")
        return
    server = make_server(target, "admin-ui", {**PLUGINS, "admin_assets_path": admin_assets})
    yield server
    server.cleanup()


# Chromium's first start and kinto-admin's pages take a while on 2 cores; tools run by hand may install too.
@pytest.mark.timeout(900)
def test_admin_ui_creates_bucket_collection_record(admin_server, node_modules, target):
    api = admin_server.url
    user, password = uid("ui"), "ui-password"
    r = requests.put(f"{api}/accounts/{user}", json={"data": {"password": password}}, timeout=30)
    assert r.status_code == 201, r.text
    bucket, collection, title = uid("uib"), uid("uic"), f"Typed in Chromium {uid('')}"
    OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = OUTPUT / f"admin-ui-{target}.png"
    run = subprocess.run(
        ["node", str(REPO / "tests/browser/admin_ui.cjs"), admin_server.origin, user, password, bucket, collection,
         title, str(shot)],
        env={**os.environ, "NODE_PATH": node_modules}, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr[-3000:]}"
    assert shot.exists() and shot.stat().st_size > 10_000, "a screenshot of the records list"

    auth = (user, password)
    b = requests.get(f"{api}/buckets/{bucket}", auth=auth, timeout=30)
    assert b.status_code == 200 and b.json()["permissions"]["write"] == [f"account:{user}"]
    c = requests.get(f"{api}/buckets/{bucket}/collections/{collection}", auth=auth, timeout=30)
    assert c.status_code == 200 and "schema" in c.json()["data"], "the UI's default JSON schema"
    records = requests.get(f"{api}/buckets/{bucket}/collections/{collection}/records", auth=auth, timeout=30).json()
    assert [(rec["title"], rec["content"]) for rec in records["data"]] == [(title, "typed in the admin UI")]


def _raw_get(origin, path):
    """GET with the path sent byte for byte (requests would remove its dot segments)."""
    host, port = origin.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_admin_paths(admin_server, admin_assets):
    origin = admin_server.origin
    caps = requests.get(f"{origin}/v1/", timeout=30).json()["capabilities"]
    version = (Path(admin_assets) / "VERSION").read_text().strip()
    assert caps["admin"] == {"description": "Serves the admin console.", "url": "https://github.com/Kinto/kinto-admin/",
                             "version": version}
    r = requests.get(f"{origin}/v1/admin", allow_redirects=False, timeout=30)
    assert r.status_code == 307 and r.headers["Location"].endswith("/v1/admin/")
    # The page itself is HTML whatever the client accepts (no JSON `Accept` rule), with the plugin's CSP.
    r = requests.get(f"{origin}/v1/admin/", headers={"Accept": "text/html"}, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self' 'unsafe-inline' 'unsafe-eval'" in r.headers["Content-Security-Policy"]
    script = re.search(r'src="/v1/admin/(assets/[^"]+\.js)"', r.text).group(1)
    r = requests.get(f"{origin}/v1/admin/{script}", timeout=30)
    assert r.status_code == 200 and "javascript" in r.headers["Content-Type"] and len(r.content) > 1000
    r = requests.get(f"{origin}/v1/admin/nope.js", timeout=30)
    assert r.status_code == 404 and r.json()["errno"] == 111, r.text
    for path in ("/v1/admin/../__heartbeat__", "/v1/admin/assets/../../../etc/passwd",
                 "/v1/admin/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/v1/admin/..%2f..%2f..%2fetc/passwd"):
        status, body = _raw_get(origin, path)
        assert status in (400, 404) and b"root:" not in body, (path, status, body[:200])
