"""A real OpenID Connect provider for the identity tests: tools/idp/idp.mjs (npm's oidc-provider) on loopback.

tests/run installs its packages (tools/idp/setup) and exports KINTO_TEST_IDP_MODULES, their node_modules
directory. Without it the identity tests skip, unless CI is set: then they fail.
"""

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from harness import OUTPUT, REPO, _die_with_parent, _tail, free_port

SYNC_SCOPE = "https://identity.mozilla.com/apps/oldsync"
RESOURCE = "urn:kinto:api"
CLIENTS = {"test-client": "test-secret", "app-a": "secret-a", "app-b": "secret-b"}


def installed_or_skip(variable, setup, what):
    """The directory tests/run exported in `variable` (from `setup`); without it skip, or fail under CI."""
    modules = os.environ.get(variable)
    if modules:
        return modules
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {variable} is not ({setup} via tests/run)", pytrace=False)
    pytest.skip(f"no {what}: run tests/run, or set {variable}=$({setup})")


def modules_or_skip():
    return installed_or_skip("KINTO_TEST_IDP_MODULES", "tools/idp/setup", "test identity provider")


def fxa_settings(idp, **extra):
    """A deployment taking the provider's tokens as Firefox Accounts', with the default bucket, plus `extra`."""
    return {"multiauth_policies": "fxa", "fxa_oauth_oauth_uri": idp.url, "fxa_oauth_required_scope": SYNC_SCOPE,
            "includes": "kinto.plugins.default_bucket", **extra}


class Idp:
    """One provider process; `restart(new_key=True)` rotates its signing key (a new key file, a new kid)."""

    def __init__(self, modules, redirect_uris=()):
        self.dir = Path(tempfile.mkdtemp(prefix="kinto-rs-idp-"))
        shutil.copy(REPO / "tools" / "idp" / "idp.mjs", self.dir / "idp.mjs")
        # ES modules resolve packages next to the importing file, not through NODE_PATH.
        (self.dir / "node_modules").symlink_to(modules)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.redirect_uris = list(redirect_uris)
        self.keys = self.dir / "keys-0.json"
        self.generation = 0
        self.popen = None
        self.log = OUTPUT / "idp.log"

    def start(self):
        OUTPUT.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "IDP_PORT": str(self.port), "IDP_KEYS": str(self.keys),
               "IDP_REDIRECT_URIS": ",".join(self.redirect_uris or [f"{self.url}/unused"])}
        fh = open(self.log, "ab")
        self.popen = subprocess.Popen(["node", "idp.mjs"], cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                                      stdout=fh, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        fh.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"idp exited with {self.popen.returncode}:\n{_tail(self.log)}")
            try:
                if requests.get(self.url + "/__heartbeat__", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"idp did not start:\n{_tail(self.log)}")

    def stop(self):
        if self.popen and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self.popen = None

    def restart(self, new_key=False):
        self.stop()
        if new_key:
            self.generation += 1
            self.keys = self.dir / f"keys-{self.generation}.json"
        return self.start()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def token(self, username, client="test-client", scope="openid email", resource=None, **extra):
        data = {"grant_type": "urn:test:password", "client_id": client, "client_secret": CLIENTS[client],
                "username": username, "scope": scope, **extra}
        if resource:
            data["resource"] = resource
        r = requests.post(self.url + "/token", data=data, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()["access_token"]

    def jwt(self, username, client="test-client", scope=SYNC_SCOPE):
        """An RS256 JWT access token (typ at+jwt, aud urn:kinto:api), as FxA issues."""
        return self.token(username, client=client, scope=scope, resource=RESOURCE)

    def revoke(self, token, client="test-client"):
        r = requests.post(self.url + "/token/revocation", timeout=10,
                          data={"token": token, "client_id": client, "client_secret": CLIENTS[client]})
        assert r.status_code == 200, r.text

    def private_jwk(self):
        return json.loads(self.keys.read_text())["keys"][0]


def b64url(data):
    if isinstance(data, (dict, list)):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unverified_claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def sign(claims, jwk, alg="RS256", headers=None):
    """A JWT signed with the provider's own private key (PyJWT), to craft claims it would not issue."""
    import jwt

    key = jwt.PyJWK(jwk).key
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": jwk["kid"], "typ": "at+jwt", **(headers or {})})


class Deployments:
    """Our servers configured against one provider, started on first use, keyed by (target, name)."""

    def __init__(self, idp, profiles):
        self.idp = idp
        self.profiles = profiles
        self.servers = {}

    def get(self, target, name):
        from harness import make_server

        key = (target, name)
        if key not in self.servers:
            self.servers[key] = make_server(target, name, self.profiles[name](self.idp))
        return self.servers[key]

    def close(self):
        for s in self.servers.values():
            s.cleanup()


def bearer(server, token):
    """A requests session for `server` sending `Authorization: Bearer <token>`."""
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    s.root = server.url
    return s


def whoami(server, token):
    r = requests.get(server.url + "/", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return r.status_code, r.json().get("user", {}).get("id") if r.status_code == 200 else r.json()


# Fixtures shared by the identity tests: each module names its deployments in PROFILES (name -> settings for a
# provider); `server` is the first one.
@pytest.fixture(scope="module")
def idp():
    p = Idp(modules_or_skip()).start()
    yield p
    p.cleanup()


@pytest.fixture(scope="module")
def deployments(idp, request):
    d = Deployments(idp, request.module.PROFILES)
    yield d
    d.close()


@pytest.fixture
def server(deployments, target, request):
    return deployments.get(target, next(iter(request.module.PROFILES)))
