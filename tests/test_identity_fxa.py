"""Firefox Accounts tokens and per-app users at the gateway, against a real provider serving FxA's /v1/jwks and
/v1/verify (tests/idp.py): JWT access tokens checked against the keys, opaque ones at /v1/verify, the required
scope, kinto-fxa's user ids, and two apps (two OAuth clients) whose data stay apart for the same person.

Ours only: the reference would need kinto-fxa, which is not installed with it.
"""


import pytest
import requests

from idp import SYNC_SCOPE, whoami
from idp import deployments, idp, server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.targets("single", "split")


def fxa_profile(idp):
    return {
        "multiauth_policies": "fxa",
        "fxa_oauth_oauth_uri": idp.url,
        "fxa_oauth_required_scope": SYNC_SCOPE,
        # kinto-fxa's multi-client settings: each app's user ids end in -<app>.
        "fxa_oauth_clients_notes_client_id": "app-a",
        "fxa_oauth_clients_send_client_id": "app-b",
        "includes": "kinto.plugins.default_bucket",
    }


APP_BURST = 3


def fxa_app_limited_profile(idp):
    # Admission control per app (issue 18): each app's users together share one rate.
    return {**fxa_profile(idp), "ratelimit_app_per_second": 1, "ratelimit_app_burst": APP_BURST}


PROFILES = {"fxa": fxa_profile, "app_limited": fxa_app_limited_profile}


def test_jwt_gives_kinto_fxa_user_ids(server, idp):
    assert whoami(server, idp.jwt("bob", client="app-a")) == (200, "fxa:bob-notes")
    assert whoami(server, idp.jwt("bob", client="app-b")) == (200, "fxa:bob-send")


def test_opaque_token_is_verified_at_v1_verify(server, idp):
    token = idp.token("ann", client="app-a", scope=f"openid {SYNC_SCOPE}")
    assert token.count(".") == 0
    assert whoami(server, token) == (200, "fxa:ann-notes")


def test_missing_scope_is_refused(server, idp):
    for token in (idp.jwt("sam", client="app-a", scope="profile"), idp.token("sam", client="app-a", scope="openid")):
        assert whoami(server, token) == (200, None)
        r = requests.put(f"{server.url}/buckets/sam", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert r.status_code == 401


def test_client_without_an_app_is_refused(server, idp):
    assert whoami(server, idp.jwt("bob", client="test-client")) == (200, None)


def test_two_apps_keep_separate_data_for_one_person(server, idp):
    a = {"Authorization": f"Bearer {idp.jwt('pat', client='app-a')}"}
    b = {"Authorization": f"Bearer {idp.jwt('pat', client='app-b')}"}
    url = f"{server.url}/buckets/default/collections/c/records"
    r = requests.post(url, json={"data": {"secret": "from-a"}}, headers=a, timeout=30)
    assert r.status_code == 201, r.text
    rid = r.json()["data"]["id"]
    # Each app has its own default bucket.
    hello_a = requests.get(server.url + "/", headers=a, timeout=30).json()["user"]
    hello_b = requests.get(server.url + "/", headers=b, timeout=30).json()["user"]
    assert hello_a["bucket"] != hello_b["bucket"]
    assert requests.get(url, headers=b, timeout=30).json()["data"] == []
    # App B cannot read or write app A's records, even by their full path.
    theirs = f"{server.url}/buckets/{hello_a['bucket']}/collections/c/records/{rid}"
    assert requests.get(theirs, headers=b, timeout=30).status_code in (403, 404)
    assert requests.put(theirs, json={"data": {"x": 1}}, headers=b, timeout=30).status_code in (403, 404)
    assert requests.get(theirs, headers=a, timeout=30).json()["data"]["secret"] == "from-a"


def test_tampered_jwt_is_refused(server, idp):
    token = idp.jwt("tim", client="app-a")
    head, body, sig = token.split(".")
    flipped = sig[:-4] + ("AAAA" if not sig.endswith("AAAA") else "BBBB")
    assert whoami(server, f"{head}.{body}.{flipped}") == (200, None)


def test_hello_advertises_fxa(server, idp):
    caps = requests.get(server.url + "/", timeout=30).json()["capabilities"]
    assert caps["fxa"]["required_scope"] == SYNC_SCOPE
    assert caps["fxa"]["oauth_uri"] == idp.url + "/v1"
    assert "basicauth" not in caps


def test_rate_limits_per_app_are_independent(deployments, target, idp):
    server = deployments.get(target, "app_limited")
    a = {"Authorization": f"Bearer {idp.jwt('rhea', client='app-a')}"}
    a2 = {"Authorization": f"Bearer {idp.jwt('otto', client='app-a')}"}
    b = {"Authorization": f"Bearer {idp.jwt('rhea', client='app-b')}"}
    statuses = [requests.get(server.url + "/buckets/default", headers=a, timeout=30).status_code
                for _ in range(APP_BURST)]
    assert statuses == [200] * APP_BURST
    r = requests.get(server.url + "/buckets/default", headers=a, timeout=30)
    assert r.status_code == 429 and r.json()["details"] == {"limit": "rate_app"}, r.text
    assert int(r.headers["Retry-After"]) >= 1
    # Another user of the same app shares its rate; the same person in the other app does not.
    assert requests.get(server.url + "/", headers=a2, timeout=30).status_code == 429
    assert requests.get(server.url + "/buckets/default", headers=b, timeout=30).status_code == 200
