"""Authentication hardening (ours only): a dead accounts shard does not lock out users who are not accounts, and
account existence does not show through bcrypt. Kinto has one storage (no shard to lose) and runs bcrypt only for
existing accounts, so the reference is not a target here.

Each test starts its own server: one kills a shard, the other reads process-wide counters.
"""

import hashlib
import re
import statistics
import time

import pytest

from api import PASSWORD, Api, assert_error, user_id
from conftest import PLUGINS
from harness import make_server

# The `plugins` profile (accounts before basicauth) with Prometheus metrics at /v1/__metrics__.
SETTINGS = {**PLUGINS, "includes": PLUGINS["includes"] + " kinto.plugins.prometheus"}


def owner_shard(placement_key, count=2):
    """common/placement (kinto-placement): SHA-256 slot of the key, static contiguous ranges of 4096 slots."""
    slot = int.from_bytes(hashlib.sha256(placement_key.encode()).digest()[:2], "big") % 4096
    return slot * count // 4096


def name_on(shard, prefix):
    """A user name whose `account/<name>` is placed on `shard`."""
    return next(n for n in (f"{prefix}{i}" for i in range(1000)) if owner_shard(f"account/{n}") == shard)


def metric(server, name, labels=""):
    text = Api(server).get("/__metrics__").text
    found = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def signup(server, name, password):
    Api(server).ok("PUT", f"/accounts/{name}", json={"data": {"password": password}}, status=201)


@pytest.fixture
def split_server(target):
    server = make_server(target, "auth-outage", SETTINGS)
    yield server
    server.cleanup()


# Killing one shard needs the gateway and shards in separate processes: `split`, and `cql` (same topology; its
# shards share one Cassandra, but a name's account lookup still goes to the shard process that owns it).
@pytest.mark.targets("split")
def test_dead_accounts_shard_spares_users_who_are_not_accounts(split_server):
    dead, live = 0, 1
    account = name_on(dead, "acct")
    signup(split_server, account, "account-pw")
    me = Api(split_server, account, "account-pw").get("/").json()["user"]
    assert me["id"] == f"account:{account}"  # this gateway now knows the name is an account

    basic = name_on(dead, "basic")  # a basicauth user (not an account) whose name's account shard will die
    bid = next(b for b in (f"hard{i}" for i in range(1000)) if owner_shard(b) == live)
    user = Api(split_server, basic)
    user.create_bucket(bid)
    cid = user.create_collection(bid)
    # A name that cannot be an account id: never looked up, whatever shard `account/<name>` would be on.
    odd = next(n for n in (f"not an account {i}" for i in range(1000)) if owner_shard(f"account/{n}") == dead)
    odd_user = Api(split_server, odd)
    user.ok("PATCH", f"/buckets/{bid}", json={"permissions": {"write": [user_id(odd)]}})
    fallbacks = metric(split_server, "kinto_account_lookup_fallback_total")

    split_server.kill_shard(dead)
    try:
        assert user.get("/").json()["user"]["id"] == user_id(basic)
        user.ok("GET", f"/buckets/{bid}", status=200)
        user.ok("PUT", f"/buckets/{bid}/collections/{cid}/records/r1", json={"data": {"n": 1}}, status=201)
        assert metric(split_server, "kinto_account_lookup_fallback_total") > fallbacks

        fallbacks = metric(split_server, "kinto_account_lookup_fallback_total")
        odd_user.ok("GET", f"/buckets/{bid}/collections/{cid}/records/r1", status=200)
        assert metric(split_server, "kinto_account_lookup_fallback_total") == fallbacks, "looked up, yet no account"

        # The known account is not silently another identity, with its password or any other.
        for password in ("account-pw", "wrong"):
            r = Api(split_server, account, password).get(f"/buckets/{bid}")
            assert_error(r, 503, 201)
            assert "Retry-After" in r.headers
    finally:
        split_server.restart_shard(dead)

    assert Api(split_server, account, "account-pw").get("/").json()["user"]["id"] == f"account:{account}"
    assert user.get(f"/buckets/{bid}/collections/{cid}/records/r1").json()["data"]["n"] == 1


@pytest.fixture(scope="module")
def metered(target):
    server = make_server(target, "auth-timing", SETTINGS)
    yield server
    server.cleanup()


def cache_counts(server):
    return tuple(metric(server, "kinto_account_cache_total", f'{{result="{r}"}}') for r in ("miss", "hit"))


def delta(server, before):
    return tuple(after - b for after, b in zip(cache_counts(server), before))


def whoami(server, name, password):
    r = Api(server, name, password).get("/")
    assert r.status_code == 200, r.text
    return r.json()["user"]["id"]


# `single` and `split` (and `cql`) run the same gateway code; one in-process target would be enough, but the
# counters are per gateway process, which both topologies expose at /v1/__metrics__.
@pytest.mark.targets("single", "split")
def test_unknown_names_pay_bcrypt_like_accounts(metered):
    known, unknown = "timing-known", "timing-unknown"
    signup(metered, known, "right")

    # A first wrong password: bcrypt runs (a miss) for the account and for the name without one.
    for name in (known, unknown):
        before = cache_counts(metered)
        assert whoami(metered, name, "wrong-1") == user_id(name, "wrong-1")
        assert delta(metered, before) == (1, 0), name
    # A repeated try: the negative verdict is cached (a hit) in both cases.
    for name in (known, unknown):
        before = cache_counts(metered)
        assert whoami(metered, name, "wrong-1") == user_id(name, "wrong-1")
        assert delta(metered, before) == (0, 1), name
    # A name that cannot be an account id is no account check at all.
    before = cache_counts(metered)
    assert whoami(metered, "no/such account", PASSWORD) == user_id("no/such account")
    assert delta(metered, before) == (0, 0)

    # Cached verdicts are tied to the stored hash: a new account, or the right password, works at once.
    signup(metered, unknown, "wrong-1")
    assert whoami(metered, unknown, "wrong-1") == f"account:{unknown}"
    assert whoami(metered, known, "right") == f"account:{known}"


@pytest.mark.targets("single", "split")
def test_wrong_password_takes_about_as_long_without_an_account(metered):
    # A loose ratio, not a threshold: the machine is noisy. Fresh passwords, so nothing is cached.
    known = "timing-ratio-known"
    signup(metered, known, "right")

    def median_seconds(name):
        times = []
        for i in range(3):
            api = Api(metered, name, f"guess-{i}")
            started = time.perf_counter()
            assert api.get("/").status_code == 200
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    with_account, without = median_seconds(known), median_seconds("timing-ratio-unknown")
    assert without >= with_account / 3, (with_account, without)
