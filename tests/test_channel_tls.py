"""The gateway -> shard channel is authenticated (issue 17; docs/security.md): a shard believes the caller
identity each gRPC request carries, so it must answer only callers holding a client certificate from the
gateways' CA. Ours only: the reference has no shards."""

import subprocess
import time

import grpc
import pytest
import requests

from harness import (BASE_SETTINGS, BIN, REPO, START_TIMEOUT, Proc, _clean_env, _env_settings, _wait_heartbeat,
                     _wait_tcp, channel_certs, free_port, gateway_tls_env, shard_tls_env)

HEALTH = "/kinto.shard.v1.Shard/Health"
AUTH = ("alice", "secret")


@pytest.fixture(scope="module")
def other_certs(tmp_path_factory):
    """A second CA with its own shard and gateway certificates: trusted by nobody here."""
    d = tmp_path_factory.mktemp("other-certs")
    subprocess.run([str(REPO / "tools" / "certs" / "generate"), str(d)], check=True,
                   capture_output=True, timeout=60)
    return d


def shard_env(port, data, tls=True):
    env = _clean_env()
    if tls:
        env.update(shard_tls_env(channel_certs()))
    env.update(_env_settings(BASE_SETTINGS))
    env.update(KINTO_BIND=f"127.0.0.1:{port}", KINTO_DATA_DIR=str(data))
    return env


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    """One mutual-TLS shard (shard_count 1); yields its port."""
    port = free_port()
    proc = Proc("channel-tls-shard", [BIN / "kinto-shard"], shard_env(port, tmp_path_factory.mktemp("shard")))
    try:
        _wait_tcp(proc, port, time.monotonic() + START_TIMEOUT)
        yield port
    finally:
        proc.stop()


def health(port, credentials=None):
    """The raw bytes of a Health call (an empty message) on `port`, over TLS when `credentials` are given."""
    target = f"127.0.0.1:{port}"
    if credentials is None:
        channel = grpc.insecure_channel(target)
    else:
        # The shard certificate names localhost and 127.0.0.1; grpc checks the name it is given here.
        channel = grpc.secure_channel(target, credentials, options=[("grpc.ssl_target_name_override", "localhost")])
    with channel:
        call = channel.unary_unary(HEALTH, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        return call(b"", timeout=10)


def credentials(ca_dir, client_dir=None, name="gateway"):
    """Trusting `ca_dir`'s CA, with `client_dir`'s certificate `name` (none without `client_dir`)."""
    ca = (ca_dir / "ca.pem").read_bytes()
    if client_dir is None:
        return grpc.ssl_channel_credentials(root_certificates=ca)
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=(client_dir / f"{name}.key").read_bytes(),
                                        certificate_chain=(client_dir / f"{name}.pem").read_bytes())


def refused(port, creds):
    with pytest.raises(grpc.RpcError) as err:
        health(port, creds)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value
    return err.value


def test_the_gateways_certificate_is_answered(shard):
    """The control for the refusals below: same channel, same call, with the gateway's certificate."""
    certs = channel_certs()
    assert isinstance(health(shard, credentials(certs, certs)), bytes)


def test_a_caller_without_a_client_certificate_is_refused(shard):
    refused(shard, credentials(channel_certs()))


def test_a_client_certificate_from_another_ca_is_refused(shard, other_certs):
    refused(shard, credentials(channel_certs(), other_certs))


def test_a_shards_certificate_is_no_client_certificate(shard):
    """Same CA, but its extended key usage is server authentication only (tools/certs/generate)."""
    certs = channel_certs()
    refused(shard, credentials(certs, certs, name="shard"))


def test_plaintext_to_a_tls_shard_is_refused(shard):
    refused(shard, None)


def start_gateway(label, shard_port, tls_env):
    port = free_port()
    env = _clean_env()
    env.update(tls_env)
    env.update(_env_settings(BASE_SETTINGS))
    env.update(KINTO_BIND=f"127.0.0.1:{port}", KINTO_SHARD_URLS=f"https://127.0.0.1:{shard_port}")
    proc = Proc(label, [BIN / "kinto-gateway"], env)
    _wait_tcp(proc, port, time.monotonic() + START_TIMEOUT)
    return proc, f"http://127.0.0.1:{port}/v1"


def test_through_the_gateway_with_its_certificate(shard):
    proc, url = start_gateway("channel-tls-gateway", shard, gateway_tls_env(channel_certs()))
    try:
        _wait_heartbeat([proc], url, time.monotonic() + START_TIMEOUT)
        r = requests.put(f"{url}/buckets/channel-tls", auth=AUTH, timeout=10)
        assert r.status_code == 201, r.text
        assert requests.get(f"{url}/buckets/channel-tls", auth=AUTH, timeout=10).status_code == 200
    finally:
        proc.stop()


@pytest.mark.parametrize("case", ["wrong CA", "no client certificate"])
def test_a_gateway_the_shard_does_not_trust_answers_503_promptly(shard, other_certs, case):
    """Either side refusing the handshake makes the shard unreachable: a Kinto 503, not a hang."""
    env = gateway_tls_env(channel_certs())
    if case == "wrong CA":
        env["KINTO_GRPC_SERVER_CA_FILE"] = str(other_certs / "ca.pem")
    else:
        del env["KINTO_GRPC_CLIENT_CERT_FILE"], env["KINTO_GRPC_CLIENT_KEY_FILE"]
    proc, url = start_gateway("channel-tls-untrusted-gateway", shard, env)
    try:
        started = time.monotonic()
        r = requests.get(f"{url}/buckets/channel-tls", auth=AUTH, timeout=30)
        assert time.monotonic() - started < 15
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["code"] == 503 and body["error"] == "Service Unavailable", body
        assert {"errno", "message"} <= body.keys(), body
        assert requests.get(f"{url}/__heartbeat__", timeout=30).status_code == 503
    finally:
        proc.stop()


def run(binary, env):
    return subprocess.run([str(BIN / binary)], env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def exits_naming(run_, setting, binary):
    assert run_.returncode == 1, (run_.stdout, run_.stderr)
    assert setting in run_.stderr, run_.stderr
    assert f"{binary}: " in run_.stderr, run_.stderr


def test_a_shard_with_a_missing_key_file_exits_naming_it(tmp_path):
    env = shard_env(free_port(), tmp_path / "data")
    env["KINTO_GRPC_SERVER_KEY_FILE"] = str(tmp_path / "missing.key")
    exits_naming(run("kinto-shard", env), "grpc_server_key_file", "kinto-shard")


def test_a_shard_whose_key_is_not_its_certificates_exits_naming_it(tmp_path):
    env = shard_env(free_port(), tmp_path / "data")
    env["KINTO_GRPC_SERVER_KEY_FILE"] = str(channel_certs() / "gateway.key")
    result = run("kinto-shard", env)
    exits_naming(result, "grpc_server_key_file", "kinto-shard")
    assert "listening" not in result.stdout, result.stdout


def test_a_shard_with_a_malformed_client_ca_exits_naming_it(tmp_path):
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    env = shard_env(free_port(), tmp_path / "data")
    env["KINTO_GRPC_CLIENT_CA_FILE"] = str(tmp_path / "junk.pem")
    exits_naming(run("kinto-shard", env), "grpc_client_ca_file", "kinto-shard")


def test_a_gateway_with_a_missing_ca_file_exits_naming_it(tmp_path):
    env = _clean_env()
    env.update(gateway_tls_env(channel_certs()))
    env.update(KINTO_BIND=f"127.0.0.1:{free_port()}", KINTO_SHARD_URLS=f"https://127.0.0.1:{free_port()}",
               KINTO_GRPC_SERVER_CA_FILE=str(tmp_path / "missing.pem"))
    exits_naming(run("kinto-gateway", env), "grpc_server_ca_file", "kinto-gateway")


def test_a_shard_off_loopback_without_mutual_tls_does_not_start(tmp_path):
    """Refused before it binds: plaintext is for loopback, or an explicit grpc_insecure."""
    env = shard_env(free_port(), tmp_path / "data", tls=False)
    env["KINTO_BIND"] = f"0.0.0.0:{free_port()}"
    exits_naming(run("kinto-shard", env), "grpc_insecure", "kinto-shard")


def test_a_gateway_calling_a_remote_shard_in_plaintext_does_not_start():
    env = _clean_env()
    env.update(KINTO_BIND=f"127.0.0.1:{free_port()}", KINTO_SHARD_URLS="http://192.0.2.1:9000")
    exits_naming(run("kinto-gateway", env), "grpc_insecure", "kinto-gateway")
