"""Runs the kinto.js scenarios under tests/clients/ in Node against a server, with the packages that
tools/clients/setup installs (tests/run exports their node_modules directory as KINTO_TEST_CLIENT_MODULES).
Without it these tests skip, unless CI is set: then they fail.
"""

import json
import os
import subprocess

from harness import OUTPUT, REPO
from idp import installed_or_skip

SCENARIOS = REPO / "tests" / "clients"


def modules_or_skip():
    return installed_or_skip("KINTO_TEST_CLIENT_MODULES", "tools/clients/setup", "client packages")


def run_scenario(name, payload, timeout=300):
    """Runs tests/clients/<name>.cjs with `payload` as JSON on stdin; returns the JSON report it prints."""
    # CommonJS scripts resolve packages through NODE_PATH (ES modules would not).
    env = {**os.environ, "NODE_PATH": modules_or_skip()}
    out = subprocess.run(["node", str(SCENARIOS / f"{name}.cjs")], input=json.dumps(payload), capture_output=True,
                         text=True, timeout=timeout, env=env)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / f"node-{name}.log").write_text(out.stderr)
    assert out.returncode == 0, f"{name} failed ({out.returncode}):\n{out.stderr[-4000:]}"
    return json.loads(out.stdout)
