"""The container build file (issue 20), checked by hadolint (from PyPI, in the test venv).

CI has no Docker engine, so the image is not built here; hadolint parses the Dockerfile and checks its
instructions (shell in RUN with ShellCheck, USER, COPY --from targets, ...). Needs no Rust binary.
"""

import shutil
import subprocess
import sys
from pathlib import Path

from harness import REPO


def hadolint():
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: tests/run installs it from tests/requirements.txt"
    return found


def test_dockerfile_passes_hadolint():
    r = subprocess.run([hadolint(), "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_hadolint_finds_faults(tmp_path):
    """The check above can fail: a Dockerfile that runs as root with an unpinned base image is refused."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN cd /tmp && apt-get install curl\n")
    r = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "DL3006" in r.stdout, r.stdout


def test_image_runs_as_a_non_root_user_with_the_binaries_the_chart_runs():
    text = (REPO / "Dockerfile").read_text()
    final_stage = text[text.rindex("\nFROM "):]
    assert "\nUSER 10001:10001\n" in final_stage
    values = (REPO / "helm/kinto-rs/values.yaml").read_text()
    assert "runAsUser: 10001" in values and "runAsNonRoot: true" in values
    lines = text.splitlines()
    build = next(line for line in lines if "cargo build --release" in line).split()
    copied = next(line for line in lines if "for bin in" in line).split(";")[0].split()
    run_by_chart = set()
    for template in (REPO / "helm/kinto-rs/templates").glob("*.yaml"):
        for line in template.read_text().splitlines():
            if line.strip().startswith("command: ["):
                run_by_chart.add(line.split('"')[1])
    assert run_by_chart == {"kinto-gateway", "kinto-shard", "kinto-operator"}
    for binary in run_by_chart | {"kinto"}:
        assert build[build.index(binary) - 1] == "-p", binary
        assert binary in copied, binary
