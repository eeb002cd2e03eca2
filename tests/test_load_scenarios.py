"""The load test's scenarios (`kinto-load`, loadtests/) against each target, briefly: every operation gets the
status its scenario expects, and no request is redirected. The benchmarks in docs/benchmarks.md rest on this: a
scenario that fails or is redirected measures something else than it says (before this test, every request went
to a path without `/v1` and cost a 307 and a second request, on both servers)."""

import csv
import json
import os
import subprocess

import pytest

from harness import BIN, OUTPUT

# goose's failures that are answers the scenario wants: a poll's 304 (goose counts any non-2xx as a failure).
WANTED = ("304",)


def run_load(server, scenarios, tag, env=None):
    """goose's metrics of a 3 s run, and its request log (one row per request, whatever the scenario checks)."""
    report, log = OUTPUT / f"load-{tag}.json", OUTPUT / f"load-{tag}.csv"
    cmd = [str(BIN / "kinto-load"), "--host", server.origin, "--users", "4", "--increase-rate", "4",
           "--run-time", "3s", "--scenarios", scenarios, "--report-file", str(report), "--quiet",
           "--no-print-metrics", "--no-reset-metrics", "--request-log", str(log), "--request-format", "csv"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    with log.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return json.loads(report.read_text())["raw_metrics"], rows


def unwanted_errors(metrics):
    return [e for e in metrics["errors"].values() if not any(w in e["error"] for w in WANTED)]


@pytest.mark.parametrize("scenarios, operations", [
    ("storagesync", {"PUT create collection", "PUT put new (If-None-Match)", "GET pull _since",
                     "PUT update (If-Match)", "POST batch of 25", "DELETE delete"}),
    ("polling,publisher", {"GET poll first", "GET poll (If-None-Match)", "PUT publish"}),
    ("scale", {"GET scale read", "PUT scale write"}),
])
def test_scenario_runs_cleanly(plugged, target, scenarios, operations):
    env = {**os.environ, "KINTO_LOAD_POPULATION": "50"}
    m, rows = run_load(plugged, scenarios, f"{target}-{scenarios.replace(',', '-')}", env)
    assert rows, "no request logged"
    redirected = [r["final_url"] for r in rows if r["redirected"] != "false"]
    assert not redirected, f"{len(redirected)} of {len(rows)} requests redirected, e.g. to {redirected[0]}"
    assert unwanted_errors(m) == []
    done = {name for name, r in m["requests"].items() if r["raw_data"]["counter"] > 0}
    assert operations <= done, f"missing operations: {operations - done} (ran: {sorted(done)})"
    for name, r in m["requests"].items():
        bad = {c: n for c, n in r["status_code_counts"].items() if int(c) >= 300 and c not in WANTED}
        assert not bad, f"{name}: {bad}"
