"""Hello view, heartbeats, version, redirects and unknown paths (kinto-api.md §1.1, §12)."""

from urllib.parse import urljoin

import pytest
import requests

from api import assert_error, user_id


def test_hello_anonymous(anon, server):
    r = anon.get("/")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    for key in ("project_name", "project_version", "http_api_version", "url", "settings", "capabilities"):
        assert key in body, key
    assert body["project_name"] == "kinto"
    assert body["http_api_version"] == "1.23"
    assert body["url"] == server.url + "/"
    assert body["settings"]["batch_max_requests"] == 25
    assert isinstance(body["capabilities"], dict)
    # Clients test their credentials with the presence of `user`.
    assert "user" not in body


def test_hello_authenticated_user_id(api):
    body = api.get("/").json()
    # Computed here, independently of the server: basicauth + hex HMAC-SHA256(secret, "user:pass").
    assert body["user"]["id"] == user_id("alice")
    assert body["user"]["id"].startswith("basicauth:") and len(body["user"]["id"]) == len("basicauth:") + 64
    assert user_id("alice") != user_id("bob")


def test_hello_without_trailing_slash(anon):
    # `/v1` itself redirects to `/v1/` (trailing-slash logic in reverse).
    r = requests.get(anon.root, allow_redirects=False, timeout=10)
    assert r.status_code in (200, 307)
    if r.status_code == 307:
        assert urljoin(anon.root, r.headers["Location"]) == anon.root + "/"


def test_heartbeat(anon):
    r = anon.get("/__heartbeat__")
    assert r.status_code == 200
    body = r.json()
    assert isinstance(body, dict)
    assert all(v is not False for v in body.values()), body


def test_lbheartbeat(anon):
    r = anon.get("/__lbheartbeat__")
    assert r.status_code == 200
    assert r.json() == {}


# Ours only: the reference answers 500 errno 999 when no version.json file is deployed.
@pytest.mark.targets("single", "split")
def test_version(anon):
    r = anon.get("/__version__")
    assert r.status_code == 200
    body = r.json()
    assert body["name"]
    assert body["version"]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_version_prefix_redirect_keeps_method_and_query(server, method):
    r = requests.request(method, server.origin + "/buckets?a=1&b=x", allow_redirects=False, timeout=10)
    assert r.status_code == 307, r.text
    assert urljoin(server.origin, r.headers["Location"]) == server.url + "/buckets?a=1&b=x"


def test_trailing_slash_redirect(anon):
    r = anon.get("/buckets/?_limit=2")
    assert r.status_code == 307
    assert urljoin(anon.root, r.headers["Location"]) == anon.root + "/buckets?_limit=2"


def test_trailing_slash_redirect_on_object(api, bucket):
    r = api.put(f"/buckets/{bucket}/", json={})
    assert r.status_code == 307
    assert urljoin(api.root, r.headers["Location"]) == api.root + f"/buckets/{bucket}"


@pytest.mark.parametrize("path", ["/nope", "/buckets/b/nope", "/buckets/b/collections/c/records/r/x"])
def test_unknown_path_404_errno_111(anon, path):
    body = assert_error(anon.get(path), 404, 111)
    assert body["message"] == "The resource you are looking for could not be found."


def test_other_version_404_errno_116(server):
    r = requests.get(server.origin + "/v2/x", allow_redirects=False, timeout=10)
    assert_error(r, 404, 116)


def test_anonymous_bucket_listing_hides_private_buckets(anon, bucket):
    r = anon.get("/buckets")
    # 401 when no bucket is public; other tests on this shared server may have made some public.
    if r.status_code == 401:
        assert_error(r, 401, 104)
        assert r.headers["WWW-Authenticate"].startswith("Basic")
    else:
        assert r.status_code == 200
        assert bucket not in [b["id"] for b in r.json()["data"]]
