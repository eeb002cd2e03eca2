"""The README's quick start works as written, on a fresh `kinto` with its own defaults (`kinto init`'s).

The lines between the README's `quick-start` markers are run with bash, unchanged but for the port (the test
server listens on a free one) and with the data in a fresh directory.
"""

import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import BIN, Proc, _clean_env, _wait_heartbeat, free_port

REPO = Path(__file__).resolve().parent.parent


def quick_start_lines():
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- quick-start[^>]*-->\s*```sh\n(.*?)```\s*<!-- /quick-start -->", text, re.S)
    assert block, "README.md has no quick-start block"
    return [line for line in block.group(1).splitlines() if line.strip()]


@pytest.fixture
def fresh_kinto():
    port = free_port()
    data = tempfile.mkdtemp(prefix="kinto-rs-quickstart-")
    env = _clean_env()
    env.update(KINTO_BIND=f"127.0.0.1:{port}", KINTO_DATA_DIR=data)
    proc = Proc("quickstart", [BIN / "kinto"], env)
    try:
        _wait_heartbeat([proc], f"http://127.0.0.1:{port}/v1", time.monotonic() + 30)
        yield port
    finally:
        proc.stop()
        shutil.rmtree(data, ignore_errors=True)


def test_readme_quick_start_works_as_written(fresh_kinto):
    if shutil.which("curl") is None:
        pytest.fail("curl is needed to run the README's quick start")
    lines = quick_start_lines()
    assert len(lines) == 3, lines
    outputs = []
    for line in lines:
        assert "localhost:8888" in line, line
        run = subprocess.run(["bash", "-c", line.replace("localhost:8888", f"localhost:{fresh_kinto}")],
                             capture_output=True, text=True, timeout=30)
        assert run.returncode == 0, (line, run.stderr)
        outputs.append(json.loads(run.stdout))
    signup, push, pull = outputs
    assert signup["data"]["id"] == "alice", signup
    assert push["data"]["id"] == "n1" and push["data"]["title"] == "first note", push
    assert [r["id"] for r in pull["data"]] == ["n1"], pull


# Ours only: the hint is ours (Kinto answers the same status and errno without it).
@pytest.mark.targets("single", "split")
def test_plugins_that_are_off_are_named_in_errors(api):
    """Kinto's code defaults (every plugin off): the tutorial's first write fails, and the error says why."""
    # Kinto finds a written record's collection missing before any permission check: 404 errno 111.
    r = api.put("/buckets/default/collections/notes/records/n1", json={"data": {}})
    assert r.status_code == 404 and r.json()["errno"] == 111, r.text
    assert "kinto.plugins.default_bucket" in r.json()["message"]
    r = api.put("/buckets/default/collections/notes", json={"data": {}})
    assert r.status_code == 403, r.text
    assert "kinto.plugins.default_bucket" in r.json()["message"]
    r = api.get("/accounts/alice")
    assert r.status_code == 404 and "kinto.plugins.accounts" in r.json()["message"], r.text
