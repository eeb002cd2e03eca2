"""A setting that does not parse stops the binary at start-up, with a message naming it (issue 16: errors are
never swallowed). Before, a bad `includes` or quota value quietly fell back to defaults: history, schemas or
quotas silently off. Ours only: the reference reads its settings differently."""

import os
import subprocess

import pytest

from harness import BIN, _clean_env, free_port


def start(binary, settings, tmp_path):
    env = _clean_env()
    env.update({"KINTO_DATA_DIR": str(tmp_path / "data"), "KINTO_BIND": f"127.0.0.1:{free_port()}"})
    env.update({f"KINTO_{k.upper()}": v for k, v in settings.items()})
    args = [str(BIN / binary)] + (["--bare"] if binary == "kinto" else [])
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("binary", ["kinto", "kinto-shard"])
@pytest.mark.parametrize("settings, named", [
    ({"includes": "kinto.plugins.quotas", "quotas_bucket_max_bytes": "10MB"}, "quotas_bucket_max_bytes"),
    ({"experimental_collection_schema_validation": "maybe"}, "experimental_collection_schema_validation"),
])
def test_a_bad_setting_stops_start_up_and_is_named(binary, settings, named, tmp_path):
    run = start(binary, settings, tmp_path)
    assert run.returncode == 1, (run.stdout, run.stderr)
    assert named in run.stderr, run.stderr
    assert run.stderr.startswith(f"{binary}: ") or f"\n{binary}: " in run.stderr, run.stderr


def test_the_all_in_one_shard_count_is_checked(tmp_path):
    """`shards` was clamped to 1..256 and a non-number read as 4; both now stop start-up."""
    for value in ("0", "many"):
        run = start("kinto", {"shards": value}, tmp_path)
        assert run.returncode == 1, (value, run.stdout, run.stderr)
        assert "shards" in run.stderr, run.stderr


def test_a_good_setting_does_not_stop_start_up(tmp_path):
    """The same settings, well formed: the process serves (it is stopped once it says where it listens)."""
    env = _clean_env()
    port = free_port()
    env.update({"KINTO_DATA_DIR": str(tmp_path / "data"), "KINTO_BIND": f"127.0.0.1:{port}",
                "KINTO_INCLUDES": "kinto.plugins.quotas", "KINTO_QUOTAS_BUCKET_MAX_BYTES": "10000000",
                "KINTO_EXPERIMENTAL_COLLECTION_SCHEMA_VALIDATION": "true"})
    proc = subprocess.Popen([str(BIN / "kinto"), "--bare"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL)
    try:
        line = proc.stdout.readline()
        assert f"listening on 127.0.0.1:{port}" in line, (line, proc.poll())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert os.path.isdir(tmp_path / "data")
