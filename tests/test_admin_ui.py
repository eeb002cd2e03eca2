"""The admin UI (issue 3): kinto-admin served at /v1/admin/, driven in Debian's Chromium.

A Kinto account signs in through the UI, creates a bucket, a collection and a record with the UI's forms; the
test then reads them back through the HTTP API. The same script runs against the reference Kinto given the same
kinto-admin build (`admin_assets_path`), which proves the script itself. Screenshots land in tests/output/.
"""

import os
import subprocess

import pytest
import requests

from api import uid
from conftest import PLUGINS
from harness import OUTPUT, REPO, make_server

pytestmark = pytest.mark.targets("ref", "single")


def _tool(*cmd):
    r = subprocess.run([str(REPO / c) if i == 0 else c for i, c in enumerate(cmd)], capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, f"{cmd[0]} failed:\n{r.stderr[-3000:]}"
    return r.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def browser_env():
    """(node_modules path, kinto-admin build path): installed into caches outside the clone."""
    return _tool("tools/browser/setup"), _tool("tools/admin/fetch")


@pytest.fixture
def admin_server(target, browser_env):
    server = make_server(target, "admin-ui", {**PLUGINS, "admin_assets_path": browser_env[1]})
    yield server
    server.cleanup()


def test_admin_ui_creates_bucket_collection_record(admin_server, browser_env, target):
    api = admin_server.url
    user, password = uid("ui"), "ui-password"
    r = requests.put(f"{api}/accounts/{user}", json={"data": {"password": password}}, timeout=30)
    assert r.status_code == 201, r.text
    caps = requests.get(f"{api}/", timeout=30).json()["capabilities"]
    assert caps["admin"]["version"], caps["admin"]
    bucket, collection, title = uid("uib"), uid("uic"), f"Typed in Chromium {uid('')}"
    OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = OUTPUT / f"admin-ui-{target}.png"
    run = subprocess.run(
        ["node", str(REPO / "tests/browser/admin_ui.cjs"), admin_server.origin, user, password, bucket, collection,
         title, str(shot)],
        env={**os.environ, "NODE_PATH": browser_env[0]}, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr[-3000:]}"
    assert shot.exists() and shot.stat().st_size > 10_000, "a screenshot of the records list"

    auth = (user, password)
    b = requests.get(f"{api}/buckets/{bucket}", auth=auth, timeout=30)
    assert b.status_code == 200 and b.json()["permissions"]["write"] == [f"account:{user}"]
    c = requests.get(f"{api}/buckets/{bucket}/collections/{collection}", auth=auth, timeout=30)
    assert c.status_code == 200 and "schema" in c.json()["data"], "the UI's default JSON schema"
    records = requests.get(f"{api}/buckets/{bucket}/collections/{collection}/records", auth=auth, timeout=30).json()
    assert [(rec["title"], rec["content"]) for rec in records["data"]] == [(title, "typed in the admin UI")]


def test_admin_paths(admin_server):
    origin = admin_server.origin
    r = requests.get(f"{origin}/v1/admin", allow_redirects=False, timeout=30)
    assert r.status_code == 307 and r.headers["Location"].endswith("/v1/admin/")
    r = requests.get(f"{origin}/v1/admin/", timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert requests.get(f"{origin}/v1/admin/nope.js", timeout=30).status_code == 404
    assert requests.get(f"{origin}/v1/admin/../__heartbeat__", timeout=30).status_code in (200, 404)
    assert requests.get(f"{origin}/v1/admin/%2e%2e/%2e%2e/etc/passwd", timeout=30).status_code == 404
