"""Admission control at the gateway (issue 18): rate limits per user, per client address and per bucket, with
Kinto's 429 (errno 117), `Retry-After` and `Backoff`; request-head limits (414, 431) in Kinto's error format; the
refusals counted in the metrics.

Ours only: the reference Kinto has no rate limits, no head limits of its own and none of these settings.
"""

import time
import uuid

import pytest
import requests

from api import Api, assert_error
from harness import make_server

pytestmark = pytest.mark.targets("single", "split")

USER_BURST = 4
ADDRESS_BURST = 6
LIMITS = {
    "includes": "kinto.plugins.prometheus",
    "ratelimit_user_per_second": 1,
    "ratelimit_user_burst": USER_BURST,
    "ratelimit_address_per_second": 1,
    "ratelimit_address_burst": ADDRESS_BURST,
    "ratelimit_bucket_overrides": "hot=1/2",
    # The tests run on one address: each poses as its own client behind a trusted proxy.
    "trusted_proxy_header": "X-Forwarded-For",
    "trusted_proxies": "127.0.0.1/32",
    "max_url_bytes": 2048,
    "max_headers": 20,
}


@pytest.fixture(scope="module")
def limited(target):
    server = make_server(target, "ratelimited", LIMITS)
    yield server
    server.cleanup()


_next_address = iter(range(1, 1 << 24))


def client(server, user=None):
    """A user on a client address of its own (X-Forwarded-For through the trusted proxy)."""
    api = Api(server, user)
    n = next(_next_address)
    api.session.headers["X-Forwarded-For"] = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
    return api


def fresh_user():
    return f"u{uuid.uuid4().hex[:10]}"


def assert_429(r, limit):
    body = assert_error(r, 429, 117)
    assert body["error"] == "Too Many Requests"
    assert body["message"] == "Client has sent too many requests"
    assert body["details"] == {"limit": limit}
    retry = int(r.headers["Retry-After"])
    assert 1 <= retry <= 5, r.headers
    assert int(r.headers["Backoff"]) >= 1
    return retry


def test_a_user_over_its_rate_gets_429_and_recovers_after_retry_after(limited):
    api = client(limited, fresh_user())
    answers = [api.get("/") for _ in range(USER_BURST)]
    assert [r.status_code for r in answers] == [200] * USER_BURST
    # Backoff as the burst runs out: none while most of it is left, then on the last quarter.
    assert "Backoff" not in answers[0].headers
    assert int(answers[-1].headers["Backoff"]) >= 1
    retry = assert_429(api.get("/"), "rate_user")
    time.sleep(retry)
    r = api.get("/")
    assert r.status_code == 200, r.text


def test_users_are_limited_independently(limited):
    alice, bob = client(limited, fresh_user()), client(limited, fresh_user())
    statuses = [alice.get("/").status_code for _ in range(USER_BURST + 1)]
    assert statuses[-1] == 429
    assert bob.get("/").status_code == 200


def test_a_client_address_over_its_rate_gets_429_and_others_do_not(limited):
    """Anonymous clients are limited by address, read from the trusted proxy's header."""
    anon, other = client(limited), client(limited)
    statuses = [anon.get("/").status_code for _ in range(ADDRESS_BURST)]
    assert statuses == [200] * ADDRESS_BURST
    assert_429(anon.get("/"), "rate_address")
    assert other.get("/").status_code == 200
    # Load balancers' health checks are never limited.
    assert anon.get("/__heartbeat__").status_code == 200
    assert anon.get("/__lbheartbeat__").status_code == 200


def test_an_untrusted_peer_cannot_pick_its_address(limited):
    """Only the trusted proxy's header is believed; here the header's rightmost untrusted entry is the client."""
    api = client(limited)
    forged = api.session.headers["X-Forwarded-For"]
    for i in range(ADDRESS_BURST):
        # A client-supplied entry left of the real one changes nothing.
        r = api.get("/", headers={"X-Forwarded-For": f"192.0.2.{i}, {forged}"})
        assert r.status_code == 200
    assert_429(api.get("/", headers={"X-Forwarded-For": f"192.0.2.99, {forged}"}), "rate_address")


def test_a_bucket_override_replaces_the_users_rate_for_that_bucket(limited):
    api = client(limited, fresh_user())
    first, second = api.get("/buckets/hot"), api.get("/buckets/hot")
    assert first.status_code != 429 and second.status_code != 429, (first.text, second.text)
    assert_429(api.get("/buckets/hot"), "rate_bucket")
    # Other buckets count against the user's own rate, untouched.
    assert api.get("/").status_code == 200


def test_rejections_are_counted_by_reason(limited):
    api = client(limited, fresh_user())
    while api.get("/").status_code != 429:
        pass
    text = requests.get(limited.url + "/__metrics__", timeout=10).text
    line = next(x for x in text.splitlines() if x.startswith('kinto_admission_rejections_total{reason="rate_user"}'))
    assert float(line.split()[-1]) >= 1


def test_a_url_past_the_limit_is_414_in_kintos_format(limited):
    api = client(limited, fresh_user())
    assert api.get("/buckets", params={"x": "a" * 1000}).status_code == 200
    assert_error(api.get("/buckets", params={"x": "a" * 3000}), 414, 113)


def test_too_many_headers_are_431_in_kintos_format(limited):
    api = client(limited, fresh_user())
    headers = {f"X-Extra-{i}": "1" for i in range(30)}
    assert_error(api.get("/", headers=headers), 431, 113)
