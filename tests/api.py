"""A thin HTTP client for the tests: paths are relative to the server's /v1 root, redirects are never followed."""

import hashlib
import hmac
import uuid

import requests

from harness import HMAC_SECRET

PASSWORD = "s3cret"


def user_id(user, password=PASSWORD, secret=HMAC_SECRET):
    """Kinto's basicauth principal: `basicauth:` + hex HMAC-SHA256(key=secret, msg="user:password")."""
    digest = hmac.new(secret.encode(), f"{user}:{password}".encode(), hashlib.sha256).hexdigest()
    return f"basicauth:{digest}"


def uid(prefix="t"):
    """A fresh object id, so tests sharing one server never collide."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


class Api:
    def __init__(self, server, user=None, password=PASSWORD):
        self.server = server
        self.user = user
        self.session = requests.Session()
        if user is not None:
            self.session.auth = (user, password)

    @property
    def root(self):
        return self.server.url

    @property
    def principal(self):
        return user_id(self.user) if self.user else None

    def as_user(self, user):
        return Api(self.server, user)

    def anonymous(self):
        return Api(self.server, None)

    def url(self, path):
        return path if path.startswith("http") else self.root + path

    def request(self, method, path, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 30)
        return self.session.request(method, self.url(path), **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def head(self, path, **kw):
        return self.request("HEAD", path, **kw)

    def post(self, path, json=None, **kw):
        return self.request("POST", path, json=json, **kw)

    def put(self, path, json=None, **kw):
        return self.request("PUT", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self.request("PATCH", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # Shortcuts that assert success: setup steps, not the behaviour under test.
    def ok(self, method, path, status=(200, 201), **kw):
        r = self.request(method, path, **kw)
        assert r.status_code in (status if isinstance(status, tuple) else (status,)), (
            f"{method} {path} -> {r.status_code} {r.text[:500]}")
        return r

    def create_bucket(self, bid=None, **body):
        bid = bid or uid("b")
        self.ok("PUT", f"/buckets/{bid}", json=body or None, status=201)
        return bid

    def create_collection(self, bid, cid=None, **body):
        cid = cid or uid("c")
        self.ok("PUT", f"/buckets/{bid}/collections/{cid}", json=body or None, status=201)
        return cid

    def create_record(self, bid, cid, data=None, rid=None, permissions=None):
        body = {"data": data or {}}
        if permissions is not None:
            body["permissions"] = permissions
        if rid:
            return self.ok("PUT", f"/buckets/{bid}/collections/{cid}/records/{rid}", json=body, status=201).json()["data"]
        return self.ok("POST", f"/buckets/{bid}/collections/{cid}/records", json=body, status=201).json()["data"]


def assert_error(r, code, errno=None, message=None):
    """Kinto's JSON error body: code, errno, error (+ message, details)."""
    assert r.status_code == code, f"expected {code}, got {r.status_code}: {r.text[:500]}"
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
    if errno is not None:
        assert body["errno"] == errno, body
    if message is not None:
        assert message in body.get("message", ""), body
    return body


def etag_value(r):
    """The integer inside a quoted ETag, asserting the quoting."""
    etag = r.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and etag[1:-1].isdigit(), etag
    return int(etag[1:-1])
