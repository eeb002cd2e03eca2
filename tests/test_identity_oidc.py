"""OpenID Connect at the gateway, against a real provider (tests/idp.py): JWT access tokens verified locally,
opaque tokens at userinfo, forgeries, key rotation, revocation after the cache TTL, and a provider outage.

Ours only: the reference Kinto fetches its provider's discovery at start-up and verifies every token at
userinfo, which refuses this provider's JWTs (they carry an audience), so the JWT cases have no reference.
"""

import time

import pytest
import requests

from idp import b64url, sign, unverified_claims, whoami
from idp import deployments, idp, server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.targets("single", "split")

TTL = 2  # verification_ttl_seconds: how long a revoked token keeps working


def oidc_profile(idp):
    return {
        "multiauth_policies": "idp basicauth",
        "multiauth_policy_idp_use": "kinto.plugins.openid.OpenIDConnectPolicy",
        "multiauth_policy_idp_issuer": idp.url,
        "multiauth_policy_idp_client_id": "test-client",
        "multiauth_policy_idp_client_secret": "test-secret",
        "multiauth_policy_idp_audience": "urn:kinto:api",
        "multiauth_policy_idp_verification_ttl_seconds": TTL,
        "identity_negative_ttl_seconds": 1,
        "identity_jwks_min_refresh_seconds": 0,
        "identity_provider_timeout_seconds": 2,
        # The most verbose level: test_no_secret_in_logs greps every line.
        "log_level": "trace",
    }


def scoped_profile(idp):
    return {**oidc_profile(idp), "multiauth_policy_idp_required_scopes": "kinto"}


PROFILES = {"oidc": oidc_profile, "scoped": scoped_profile}


def claims(idp, **over):
    now = int(time.time())
    base = {"iss": idp.url, "aud": "urn:kinto:api", "sub": "carol", "client_id": "test-client",
            "scope": "openid", "iat": now, "exp": now + 600}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def test_valid_jwt_is_verified_locally(server, idp):
    token = idp.jwt("alice")
    assert unverified_claims(token)["aud"] == "urn:kinto:api"
    assert whoami(server, token) == (200, "idp:alice")


def test_opaque_token_is_verified_at_userinfo(server, idp):
    token = idp.token("olga")
    assert token.count(".") == 0
    assert whoami(server, token) == (200, "idp:olga")
    # The user can create and read their own bucket.
    h = {"Authorization": f"Bearer {token}"}
    bid = f"b{int(time.time() * 1000)}"
    assert requests.put(f"{server.url}/buckets/{bid}", headers=h, timeout=30).status_code == 201
    r = requests.get(f"{server.url}/buckets/{bid}", headers=h, timeout=30)
    assert r.status_code == 200 and "idp:olga" in r.json()["permissions"]["write"]


@pytest.mark.parametrize("case", ["expired", "not_yet_valid", "wrong_audience", "wrong_issuer", "no_exp"])
def test_invalid_jwt_claims_are_refused(server, idp, case):
    now = int(time.time())
    over = {
        "expired": {"exp": now - 600, "iat": now - 1200},
        "not_yet_valid": {"nbf": now + 600},
        "wrong_audience": {"aud": "urn:someone:else"},
        "wrong_issuer": {"iss": idp.url + "/other"},
        "no_exp": {"exp": None},
    }[case]
    good = sign(claims(idp, sub=f"good-{case}"), idp.private_jwk())
    assert whoami(server, good) == (200, f"idp:good-{case}")  # the same key and claims otherwise pass
    bad = sign(claims(idp, sub=f"bad-{case}", **over), idp.private_jwk())
    status, user = whoami(server, bad)
    assert (status, user) == (200, None)
    r = requests.put(f"{server.url}/buckets/x{case}", headers={"Authorization": f"Bearer {bad}"}, timeout=30)
    assert r.status_code == 401 and r.json()["errno"] == 104


def test_alg_none_and_hs256_with_the_public_key_are_refused(server, idp):
    jwk = idp.private_jwk()
    body = b64url(claims(idp, sub="mallory"))
    none = f"{b64url({'alg': 'none', 'typ': 'at+jwt', 'kid': jwk['kid']})}.{body}."
    assert whoami(server, none) == (200, None)
    # HS256 keyed with the provider's public key, as published at its jwks_uri (the classic confusion attack).
    import hashlib
    import hmac

    public = requests.get(idp.url + "/v1/jwks", timeout=10).content
    header = b64url({"alg": "HS256", "typ": "at+jwt", "kid": jwk["kid"]})
    signing_input = f"{header}.{body}".encode()
    for secret in (public, jwk["n"].encode()):
        mac = b64url(hmac.new(secret, signing_input, hashlib.sha256).digest())
        assert whoami(server, f"{header}.{body}.{mac}") == (200, None)
    # A valid signature over other claims does not carry over.
    good = sign(claims(idp, sub="mallory"), jwk)
    h, _, s = good.split(".")
    assert whoami(server, f"{h}.{b64url(claims(idp, sub='admin'))}.{s}") == (200, None)


def test_unknown_kid_then_key_rotation(server, idp):
    assert whoami(server, idp.jwt("rot1")) == (200, "idp:rot1")
    old_kid = idp.private_jwk()["kid"]
    idp.restart(new_key=True)
    try:
        token = idp.jwt("rot2")
        import jwt as pyjwt

        assert pyjwt.get_unverified_header(token)["kid"] != old_kid
        # Not in the keys the gateway has: it fetches the new ones.
        assert whoami(server, token) == (200, "idp:rot2")
        # A made-up kid is refused (and does not break the next valid token).
        forged = sign(claims(idp, sub="rot3"), {**idp.private_jwk(), "kid": "made-up"})
        assert whoami(server, forged) == (200, None)
        assert whoami(server, idp.jwt("rot4")) == (200, "idp:rot4")
    finally:
        idp.restart()


def test_revoked_token_stops_working_after_the_ttl(server, idp):
    token = idp.token("rita")
    assert whoami(server, token) == (200, "idp:rita")
    idp.revoke(token)
    time.sleep(TTL + 1)
    assert whoami(server, token) == (200, None)


def test_provider_down_fails_closed_then_recovers(server, idp):
    cached = idp.token("dora")
    assert whoami(server, cached) == (200, "idp:dora")
    fresh = idp.token("dina")
    idp.stop()
    try:
        r = requests.get(server.url + "/", headers={"Authorization": f"Bearer {fresh}"}, timeout=30)
        assert r.status_code == 503, r.text
        assert r.json()["errno"] == 201 and r.json()["code"] == 503
        assert int(r.headers["Retry-After"]) > 0
        # Anonymous requests and Basic auth do not depend on the provider.
        assert requests.get(server.url + "/", timeout=30).status_code == 200
        assert requests.get(server.url + "/", auth=("u", "p"), timeout=30).json()["user"]["id"].startswith(
            "basicauth:")
    finally:
        idp.restart()
    token = idp.token("dina")
    assert whoami(server, token) == (200, "idp:dina")


def test_hello_lists_the_provider(server, idp):
    caps = requests.get(server.url + "/", timeout=30).json()["capabilities"]
    (provider,) = caps["openid"]["providers"]
    assert provider["name"] == "idp"
    assert provider["issuer"] == idp.url
    assert provider["auth_path"] == "/openid/idp/login"
    assert provider["client_id"] == "test-client"
    assert provider["userinfo_endpoint"] == idp.url + "/me"
    assert "basicauth" in caps


def test_kinto_http_syncs_with_a_bearer_token(server, idp):
    import kinto_http

    token = idp.jwt("kim")
    client = kinto_http.Client(server_url=server.url, auth=kinto_http.BearerTokenAuth(token))
    bid = f"kim{int(time.time() * 1000)}"
    client.create_bucket(id=bid)
    client.create_collection(id="notes", bucket=bid)
    client.create_record(data={"title": "one"}, collection="notes", bucket=bid)
    records = client.get_records(collection="notes", bucket=bid)
    assert [r["title"] for r in records] == ["one"]
    assert "idp:kim" in client.get_bucket(id=bid)["permissions"]["write"]


def test_no_secret_in_logs(server, idp):
    """No token, password or Authorization header value in any log line, at log level trace."""
    jwt_token, opaque = idp.jwt("logan"), idp.token("logan")
    password = "pa55-w0rd-in-logs"
    for token in (jwt_token, opaque, "garbage-token-value"):
        requests.get(server.url + "/", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        requests.put(server.url + "/buckets/logs", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    requests.get(server.url + "/", auth=("logan", password), timeout=30)
    from harness import OUTPUT

    logs = "".join(p.read_text(errors="replace") for p in OUTPUT.glob(f"{server.label}*.log"))
    assert "TRACE" in logs or "trace" in logs  # the level took effect
    basic = __import__("base64").b64encode(f"logan:{password}".encode()).decode()
    for secret in (jwt_token, jwt_token.split(".")[2], opaque, "garbage-token-value", password, basic):
        assert secret not in logs


def _follow_to(session, url, stop_prefix):
    """Follows the provider's redirects and submits its login and consent forms until a redirect to
    `stop_prefix`, which is returned (not followed)."""
    import html
    import re
    from urllib.parse import urljoin

    for _ in range(20):
        r = session.get(url, allow_redirects=False, timeout=30)
        while r.status_code in (302, 303, 307):
            url = urljoin(url, r.headers["location"])
            if url.startswith(stop_prefix):
                return url
            r = session.get(url, allow_redirects=False, timeout=30)
        assert r.status_code == 200, r.text[:500]
        (form,) = re.findall(r"<form.*?</form>", r.text, re.S)[:1]
        action = html.unescape(re.search(r'action="([^"]+)"', form).group(1))
        fields = {html.unescape(n): html.unescape(v) for n, v in
                  re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form)}
        if 'name="login"' in form:
            fields.update(login="lena", password="any")
        r = session.post(urljoin(url, action), data=fields, allow_redirects=False, timeout=30)
        assert r.status_code in (302, 303), r.text[:500]
        url = urljoin(url, r.headers["location"])
        if url.startswith(stop_prefix):
            return url
    raise AssertionError("no redirect to " + stop_prefix)


def test_login_flow_gives_a_token_to_the_callback(server, idp):
    import base64
    from urllib.parse import parse_qs, unquote, urlsplit

    token_url = server.url + "/openid/idp/token"
    idp.redirect_uris = [token_url]
    idp.restart()
    callback = "http://127.0.0.1:9/cb#tokens="
    s = requests.Session()
    r = s.get(server.url + "/openid/idp/login", params={"callback": callback, "scope": "openid email"},
              allow_redirects=False, timeout=30)
    assert r.status_code == 307
    location = r.headers["Location"]
    assert location.startswith(idp.url + "/auth?")
    q = parse_qs(urlsplit(location).query)
    assert q["client_id"] == ["test-client"] and q["redirect_uri"] == [token_url]
    assert q["response_type"] == ["code"] and len(q["state"][0]) == 64
    back = _follow_to(s, location, token_url)
    r = requests.get(back, allow_redirects=False, timeout=30)
    assert r.status_code == 307, r.text
    assert r.headers["Location"].startswith(callback)
    answer = base64.b64decode(unquote(r.headers["Location"][len(callback):]))
    import json

    access_token = json.loads(answer)["access_token"]
    assert whoami(server, access_token) == (200, "idp:lena")
    # A state is used once.
    again = requests.get(back, allow_redirects=False, timeout=30)
    assert again.status_code == 400
    assert again.json()["errno"] == 107 and again.json()["details"][0]["errno"] == 105


@pytest.mark.parametrize("params, name", [
    ({"callback": "http://evil.example.com/cb", "scope": "openid"}, "callback"),
    ({"callback": "http://127.0.0.1:9/cb", "scope": "openid offline_access"}, "scope"),
    ({"scope": "openid"}, "callback"),
])
def test_login_refuses_untrusted_callbacks_and_scopes(server, params, name):
    r = requests.get(server.url + "/openid/idp/login", params=params, allow_redirects=False, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["errno"] == 107 and r.json()["details"][0]["name"] == name


def test_login_of_an_unknown_provider(server):
    r = requests.get(server.url + "/openid/nope/login", params={"callback": "http://127.0.0.1:9/", "scope": "openid"},
                     allow_redirects=False, timeout=30)
    assert r.status_code == 400 and r.json()["details"][0]["name"] == "provider"


def test_required_scopes_for_jwt_and_opaque_tokens(deployments, target, idp):
    server = deployments.get(target, "scoped")
    # JWTs: the `scope` claim decides, checked locally.
    assert whoami(server, idp.jwt("sam", scope="openid kinto")) == (200, "idp:sam")
    assert refused(server, idp.jwt("sam", scope="openid email"))
    # Opaque tokens: the provider's introspection endpoint says what they were granted.
    assert whoami(server, idp.token("sam", scope="openid kinto")) == (200, "idp:sam")
    assert refused(server, idp.token("sam", scope="openid email"))
    # Providers that grant scopes as an `scp` array; a token with no scope claim at all.
    key = idp.private_jwk()
    assert whoami(server, sign(claims(idp, sub="sam", scope=None, scp=["openid", "kinto"]), key)) == (200, "idp:sam")
    assert refused(server, sign(claims(idp, sub="sam", scope=None), key))


def refused(server, token):
    """A refused token is anonymous, as in Kinto: the hello view names no user, and a write is a 401."""
    h = {"Authorization": f"Bearer {token}"}
    r = requests.put(f"{server.url}/buckets/scoped-{int(time.time() * 1e6)}", headers=h, timeout=30)
    return whoami(server, token) == (200, None) and r.status_code == 401
