"""Start and stop the servers under test: ours (all-in-one or gateway + shards) and the reference Kinto.

Every server listens on 127.0.0.1 only, on a port picked here. Gateways call their shards over mutual TLS
with certificates made once per session by tools/certs/generate (docs/security.md). Each process writes its stdout and stderr
to tests/output/<label>.log so a failing run can be diagnosed after the fact.
"""

import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "tests" / "output"
# Where tests/run's `cargo build` put the binaries (CARGO_TARGET_DIR, relative to the repository, if set).
BIN = REPO / os.environ.get("CARGO_TARGET_DIR", "target") / "debug"

# Shared by every server so the `basicauth:` user ids are the same everywhere.
HMAC_SECRET = "kinto-rs-test-secret"
# Settings every server gets (Kinto names, without the `kinto.` prefix).
BASE_SETTINGS = {
    "userid_hmac_secret": HMAC_SECRET,
    "bucket_create_principals": "system.Authenticated",
    # Core only unless a profile enables plugins (`includes`, Kinto's names).
    "includes": "",
    # Kinto's `multiauth.policies`; ours reads it as KINTO_MULTIAUTH_POLICIES.
    "multiauth_policies": "basicauth",
}
START_TIMEOUT = 30.0


class ServerError(RuntimeError):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    # Linux only: the child gets SIGKILL if pytest dies, so no server outlives a crashed run.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _clean_env():
    # Our binaries and Kinto both read KINTO_* variables: never leak the caller's ones into a server.
    return {k: v for k, v in os.environ.items() if not k.startswith("KINTO_")}


def _tail(path, n=60):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "<no log>"


class Proc:
    """One OS process with its log file."""

    def __init__(self, label, argv, env):
        OUTPUT.mkdir(parents=True, exist_ok=True)
        self.label = label
        self.log = OUTPUT / f"{label}.log"
        self._fh = open(self.log, "ab")
        self._fh.write(f"\n==== {time.strftime('%H:%M:%S')} {' '.join(map(str, argv))}\n".encode())
        self._fh.flush()
        try:
            self.popen = subprocess.Popen(
                [str(a) for a in argv], env=env, stdin=subprocess.DEVNULL, stdout=self._fh,
                stderr=subprocess.STDOUT, cwd=str(OUTPUT), preexec_fn=_die_with_parent,
            )
        except OSError as e:
            self._fh.close()
            raise ServerError(f"{label}: cannot start {argv[0]}: {e}") from e

    def check_alive(self):
        if self.popen.poll() is not None:
            raise ServerError(f"{self.label} exited with {self.popen.returncode}; log {self.log}:\n{_tail(self.log)}")

    def stop(self, sig=signal.SIGTERM):
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._fh.close()


def _wait_tcp(proc, port, deadline):
    while time.monotonic() < deadline:
        proc.check_alive()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise ServerError(f"{proc.label}: port {port} not open after {START_TIMEOUT}s; log:\n{_tail(proc.log)}")


def _wait_heartbeat(procs, url, deadline):
    last = None
    while time.monotonic() < deadline:
        for p in procs:
            p.check_alive()
        try:
            r = requests.get(url + "/__heartbeat__", timeout=2)
            if r.status_code == 200:
                return
            last = f"{r.status_code} {r.text[:200]}"
        except requests.RequestException as e:
            last = repr(e)
        time.sleep(0.2)
    logs = "\n".join(f"--- {p.log}\n{_tail(p.log)}" for p in procs)
    raise ServerError(f"{url}/__heartbeat__ not 200 after {START_TIMEOUT}s (last: {last})\n{logs}")


def _env_settings(settings):
    """Settings as our binaries read them from the environment (docs/configuration.md)."""
    return {"KINTO_" + k.upper(): str(v) for k, v in settings.items()}


_channel_certs = None


def channel_certs():
    """The directory of the gateway -> shard certificates, generated once per session (tools/certs/generate)."""
    global _channel_certs
    if _channel_certs is None:
        d = Path(tempfile.mkdtemp(prefix="kinto-rs-certs-"))
        atexit.register(shutil.rmtree, d, True)
        out = subprocess.run([str(REPO / "tools" / "certs" / "generate"), str(d)], capture_output=True, text=True,
                             timeout=60, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            raise ServerError(f"tools/certs/generate failed: {out.stdout}{out.stderr}")
        _channel_certs = d
    return _channel_certs


def shard_tls_env(certs):
    """A shard's settings for mutual TLS: its certificate, and the CA its callers' certificates chain to."""
    return {"KINTO_GRPC_SERVER_CERT_FILE": str(certs / "shard.pem"),
            "KINTO_GRPC_SERVER_KEY_FILE": str(certs / "shard.key"),
            "KINTO_GRPC_CLIENT_CA_FILE": str(certs / "ca.pem")}


def gateway_tls_env(certs):
    """A gateway's settings for mutual TLS: the shards' CA, and its own client certificate."""
    return {"KINTO_GRPC_SERVER_CA_FILE": str(certs / "ca.pem"),
            "KINTO_GRPC_CLIENT_CERT_FILE": str(certs / "gateway.pem"),
            "KINTO_GRPC_CLIENT_KEY_FILE": str(certs / "gateway.key")}


class Server:
    """A running target. `url` is the API root without trailing slash, e.g. http://127.0.0.1:1234/v1."""

    kind = "?"

    def __init__(self, label, settings):
        self.label = label
        self.settings = {**BASE_SETTINGS, **settings}
        self.procs = []
        self.url = None
        self.data_dirs = []

    @property
    def origin(self):
        return self.url[: -len("/v1")]

    def start(self):
        raise NotImplementedError

    def stop(self, sig=signal.SIGTERM):
        for p in reversed(self.procs):
            p.stop(sig)
        self.procs = []

    def kill(self):
        """SIGKILL every process: no chance to flush anything."""
        self.stop(signal.SIGKILL)

    def restart(self):
        """Start again on the same data directories (new ports)."""
        self.stop()
        self.start()

    def cleanup(self):
        self.stop()
        for d in self.data_dirs:
            shutil.rmtree(d, ignore_errors=True)

    def _start_checked(self, starter):
        try:
            starter()
        except BaseException:
            self.stop(signal.SIGKILL)
            raise


class SingleServer(Server):
    """`kinto`: the gateway and KINTO_SHARDS shard nodes in one process."""

    kind = "single"

    def __init__(self, label, settings, shards=3):
        super().__init__(label, settings)
        self.shards = shards
        self.data_dirs = [tempfile.mkdtemp(prefix=f"kinto-rs-{label}-")]

    def start(self):
        def go():
            port = free_port()
            env = _clean_env()
            env.update(_env_settings(self.settings))
            env.update(KINTO_BIND=f"127.0.0.1:{port}", KINTO_DATA_DIR=self.data_dirs[0], KINTO_SHARDS=str(self.shards))
            # `--bare`: every setting comes from the profile, as Kinto's tests configure theirs.
            proc = Proc(self.label, [BIN / "kinto", "--bare"], env)
            self.procs = [proc]
            self.url = f"http://127.0.0.1:{port}/v1"
            _wait_heartbeat(self.procs, self.url, time.monotonic() + START_TIMEOUT)

        self._start_checked(go)
        return self


class SplitServer(Server):
    """`kinto-gateway` in front of `count` separate `kinto-shard` processes."""

    kind = "split"

    def __init__(self, label, settings, count=2):
        super().__init__(label, settings)
        self.count = count
        self.data_dirs = [tempfile.mkdtemp(prefix=f"kinto-rs-{label}-shard{i}-") for i in range(count)]
        self.shard_ports = []

    def shard_env(self, i, port):
        env = _clean_env()
        env.update(shard_tls_env(channel_certs()))
        # Kinto settings go to every process: the shards enforce grants, the gateway the rest.
        env.update(_env_settings(self.settings))
        env.update(KINTO_BIND=f"127.0.0.1:{port}", KINTO_DATA_DIR=self.data_dirs[i],
                   KINTO_SHARD_INDEX=str(i), KINTO_SHARD_COUNT=str(self.count))
        return env

    def _start_shard(self, i, port, deadline):
        proc = Proc(f"{self.label}-shard{i}", [BIN / "kinto-shard"], self.shard_env(i, port))
        _wait_tcp(proc, port, deadline)
        return proc

    def start(self):
        def go():
            deadline = time.monotonic() + START_TIMEOUT
            self.shard_ports = [free_port() for _ in range(self.count)]
            for i, port in enumerate(self.shard_ports):
                self.procs.append(self._start_shard(i, port, deadline))
            port = free_port()
            env = _clean_env()
            env.update(gateway_tls_env(channel_certs()))
            env.update(_env_settings(self.settings))
            urls = ",".join(f"https://127.0.0.1:{p}" for p in self.shard_ports)
            env.update(KINTO_BIND=f"127.0.0.1:{port}", KINTO_SHARD_URLS=urls)
            self.procs.append(Proc(f"{self.label}-gateway", [BIN / "kinto-gateway"], env))
            self.url = f"http://127.0.0.1:{port}/v1"
            _wait_heartbeat(self.procs, self.url, deadline)

        self._start_checked(go)
        return self

    def kill_shard(self, i):
        """SIGKILL shard `i` only; the gateway and the other shards keep running."""
        self.procs[i].stop(signal.SIGKILL)

    def terminate_shard(self, i, timeout=30):
        """SIGTERM shard `i` (a rolling restart's stop), wait for it to exit; its exit status."""
        proc = self.procs[i]
        proc.popen.send_signal(signal.SIGTERM)
        code = proc.popen.wait(timeout)
        proc.stop()  # closes its log
        return code

    def restart_shard(self, i):
        """Start shard `i` again on its old port, so the running gateway reaches it."""
        self.procs[i] = self._start_shard(i, self.shard_ports[i], time.monotonic() + START_TIMEOUT)


def cql_contact_point():
    """`host:port` of the Cassandra node for the `cql` target (tests/run starts one), or None."""
    return os.environ.get("KINTO_TEST_CQL") or None


def cql_login():
    """The node's login as KINTO_CQL_* settings (tests/run: tools/cassandra's cassandra/cassandra), if it has one."""
    return {f"KINTO_CQL_{k}": os.environ[f"KINTO_TEST_CQL_{k}"] for k in ("USERNAME", "PASSWORD")
            if os.environ.get(f"KINTO_TEST_CQL_{k}")}


class CqlServer(SplitServer):
    """`kinto-gateway` + 2 `kinto-shard` sharing one keyspace of a real Cassandra (KINTO_TEST_CQL).

    Each server gets its own keyspace, created by `kinto-shard migrate` (run twice: it must be idempotent).
    """

    kind = "cql"

    def __init__(self, label, settings, count=2):
        super().__init__(label, settings, count)
        contact = cql_contact_point()
        if not contact:
            raise ServerError("the cql target needs KINTO_TEST_CQL=host:port (tests/run starts Cassandra)")
        keyspace = "t_" + "".join(c if c.isalnum() else "_" for c in label)[:20] + "_" + os.urandom(4).hex()
        self.cql = {"KINTO_STORAGE_BACKEND": "cql", "KINTO_CQL_CONTACT_POINTS": contact,
                    "KINTO_CQL_KEYSPACE": keyspace, "KINTO_CQL_REQUEST_TIMEOUT_MS": "20000", **cql_login()}
        self.migrated = False

    def shard_env(self, i, port):
        return {**super().shard_env(i, port), **self.cql}

    def migrate(self):
        env = {**_clean_env(), **self.cql}
        for _ in range(2):
            out = subprocess.run([str(BIN / "kinto-shard"), "migrate"], env=env, capture_output=True, text=True,
                                 timeout=120)
            if out.returncode != 0:
                raise ServerError(f"kinto-shard migrate failed: {out.stdout}{out.stderr}")
        self.migrated = True

    def start(self):
        if not self.migrated:
            self.migrate()
        return super().start()

    def cleanup(self):
        super().cleanup()
        # The keyspace is left for the node to drop with its data directory: dropping needs schema agreement,
        # which costs seconds per server on a loaded 2-core machine.


REF_INI = """\
[app:main]
use = egg:kinto
kinto.storage_backend = kinto.core.storage.memory
kinto.storage_url =
kinto.cache_backend = kinto.core.cache.memory
kinto.cache_url =
kinto.permission_backend = kinto.core.permission.memory
kinto.permission_url =
multiauth.policies = {policies}
multiauth.policy.account.use = kinto.plugins.accounts.AccountsPolicy
{settings}

[server:main]
use = egg:waitress#main
host = 127.0.0.1
port = {port}
threads = 8

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s] %(message)s
"""


class RefServer(Server):
    """The reference Kinto from the test venv, memory backends, started from a generated .ini."""

    kind = "ref"

    def start(self):
        def go():
            port = free_port()
            OUTPUT.mkdir(parents=True, exist_ok=True)
            settings = dict(self.settings)
            policies = settings.pop("multiauth_policies")
            lines = "\n".join(f"kinto.{k} = {v}" for k, v in settings.items())
            ini = OUTPUT / f"{self.label}.ini"
            ini.write_text(REF_INI.format(settings=lines, port=port, policies=policies))
            kinto = Path(sys.executable).parent / "kinto"
            self.procs = [Proc(self.label, [kinto, "start", "--ini", ini], _clean_env())]
            self.url = f"http://127.0.0.1:{port}/v1"
            _wait_heartbeat(self.procs, self.url, time.monotonic() + START_TIMEOUT)

        self._start_checked(go)
        return self


KINDS = {"ref": RefServer, "single": SingleServer, "split": SplitServer, "cql": CqlServer}


def make_server(target, profile, settings, attempts=3):
    """A started server of kind `target` ("ref", "single", "split", "cql") with extra Kinto `settings`.

    Retried because free_port() can race with another process grabbing the port before the server binds it.
    """
    for attempt in range(1, attempts + 1):
        server = KINDS[target](f"{target}-{profile}", settings)
        try:
            return server.start()
        except ServerError:
            server.cleanup()
            if attempt == attempts:
                raise
