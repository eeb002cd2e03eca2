"""Fixtures: which targets run, the session-wide server pool, API clients and fresh buckets.

Targets: `ref` (reference Kinto 26.5.0), `single` (our all-in-one `kinto`), `split` (our `kinto-gateway` + 2
`kinto-shard`), `cql` (the `split` topology on the Cassandra backend, one keyspace per server; needs
KINTO_TEST_CQL=host:port, which tests/run sets after starting Cassandra). KINTO_TEST_TARGETS=ref,single selects a
subset (default: all, `cql` only when KINTO_TEST_CQL is set; with CI set it is required). A test that only makes
sense on some targets says so with `@pytest.mark.targets("single", "split")` and a comment saying why; `cql`
runs wherever `split` does.
"""

import os

import pytest

from api import Api, user_id, uid
from harness import OUTPUT, ServerError, make_server

ALL_TARGETS = ("ref", "single", "split", "cql")
OURS = ("single", "split", "cql")


def default_targets():
    if os.environ.get("KINTO_TEST_CQL"):
        return ALL_TARGETS
    if os.environ.get("CI"):
        raise pytest.UsageError("CI is set but KINTO_TEST_CQL is not: the cql target would be skipped")
    return ("ref", "single", "split")


def selected_targets():
    raw = os.environ.get("KINTO_TEST_TARGETS", ",".join(default_targets()))
    chosen = [t.strip() for t in raw.split(",") if t.strip()]
    unknown = set(chosen) - set(ALL_TARGETS)
    if unknown:
        raise pytest.UsageError(f"KINTO_TEST_TARGETS: unknown targets {sorted(unknown)} (known: {ALL_TARGETS})")
    return chosen


def pytest_configure(config):
    config.addinivalue_line("markers", "targets(*names): run this test only on these targets")


def pytest_generate_tests(metafunc):
    if "target" not in metafunc.fixturenames:
        return
    targets = selected_targets()
    marker = metafunc.definition.get_closest_marker("targets")
    if marker:
        allowed = set(marker.args) | ({"cql"} if "split" in marker.args else set())
        targets = [t for t in targets if t in allowed]
    # Session scope groups the tests by target, so each server is started once.
    metafunc.parametrize("target", targets, scope="session")


# Kinto's built-in plugins as a deployment enables them (kinto-api.md §10), with `admin` the account admin.
PLUGINS = {
    "includes": " ".join(f"kinto.plugins.{p}" for p in
                         ("default_bucket", "accounts", "history", "flush", "admin")),
    "multiauth_policies": "account basicauth",
    "account_create_principals": "system.Everyone",
    "account_write_principals": "account:admin",
    "experimental_collection_schema_validation": "true",
    # The kinto-admin build served at /v1/admin/ (tools/admin/fetch, exported by tests/run); without it both
    # Kinto and ours answer /v1/admin/ with a help page.
    **({"admin_assets_path": os.environ["KINTO_TEST_ADMIN_ASSETS"]} if os.environ.get("KINTO_TEST_ADMIN_ASSETS")
       else {}),
}


class Pool:
    """Servers started on first use and kept for the session, keyed by (target, profile)."""

    PROFILES = {
        "default": {},
        "paged": {"paginate_by": 5},
        "backoff": {"backoff": 10},
        "limits": {"max_body_bytes": 1000},  # a kinto-rs setting: ours only
        "twin": {},  # a second reference instance for the differential test's self-check
        "plugins": PLUGINS,
        "plugins_twin": PLUGINS,  # the plugin scenario's self-check on `ref`
        # Kinto ≤ 19's quotas plugin (ours only: removed from Kinto 20, so the reference cannot run it).
        "quotas": {"includes": "kinto.plugins.quotas kinto.plugins.prometheus",
                   "quotas_collection_max_items": 3, "quotas_collection_max_bytes_per_item": 500,
                   "quotas_bucket_max_bytes": 3000},
        # `__user_data__` allowed to one user (ours only: see test_permissions_endpoint.py).
        "gdpr": {**PLUGINS, "user_data_delete_principals": user_id("gdpr-admin")},
    }

    def __init__(self):
        self.servers = {}
        self.failures = {}

    def get(self, target, profile="default"):
        key = (target, profile)
        if key in self.failures:
            pytest.fail(f"server {key} failed to start earlier: {self.failures[key]}", pytrace=False)
        if key not in self.servers:
            try:
                self.servers[key] = make_server(target, profile, self.PROFILES[profile])
            except ServerError as e:
                self.failures[key] = str(e)
                pytest.fail(f"server {key} failed to start: {e}", pytrace=False)
        return self.servers[key]

    def close(self):
        for server in self.servers.values():
            server.cleanup()


@pytest.fixture(scope="session")
def pool():
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for old in list(OUTPUT.glob("*.log")) + list(OUTPUT.glob("*.ini")):
        old.unlink()
    p = Pool()
    yield p
    p.close()


@pytest.fixture
def server(pool, target):
    return pool.get(target)


@pytest.fixture
def api(server):
    """Authenticated as alice, the owner of the test's bucket."""
    return Api(server, "alice")


@pytest.fixture
def bob(server):
    return Api(server, "bob")


@pytest.fixture
def anon(server):
    return Api(server)


@pytest.fixture
def bucket(api):
    return api.create_bucket()


@pytest.fixture
def collection(api, bucket):
    """(bucket id, collection id) of a fresh collection owned by alice."""
    return bucket, api.create_collection(bucket)


@pytest.fixture
def records_url(collection):
    bid, cid = collection
    return f"/buckets/{bid}/collections/{cid}/records"


@pytest.fixture
def new_id():
    return uid


@pytest.fixture
def paged_api(pool, target):
    """alice on a server with paginate_by = 5."""
    return Api(pool.get(target, "paged"), "alice")


@pytest.fixture
def backoff_api(pool, target):
    """alice on a server with backoff = 10."""
    return Api(pool.get(target, "backoff"), "alice")


@pytest.fixture
def limits_api(pool, target):
    """alice on a kinto-rs server with max_body_bytes = 1000 (a kinto-rs setting: ours only)."""
    return Api(pool.get(target, "limits"), "alice")


@pytest.fixture
def plugged(pool, target):
    """A server with the plugins of PLUGINS; `plugged.api(user)` as in Api."""
    return pool.get(target, "plugins")
