"""Differential tests at the edges of the URL space (issue 23): invalid ids in paths, redirects, requests that
cannot be decoded, `/contribute.json`. Each case is sent raw (paths with spaces, control characters or bytes
that are not UTF-8 cannot go through `requests`) to the reference Kinto and to the target, with the plugins of
a deployment, and the fields that matter are compared explicitly: the shared normaliser keeps too little of a
400 and of a redirect.
"""

import base64
import json
import socket
from urllib.parse import urlsplit

import pytest

from api import PASSWORD, Api

ORIGIN = "http://127.0.0.1:3000"


def raw(server, method, target, headers=None, body=b""):
    """(status, {lower-case header: value}, body bytes) of one HTTP/1.1 request sent as written."""
    host = urlsplit(server.url).netloc
    hdrs = {"Host": host, "Authorization": "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode(),
            "Connection": "close", **(headers or {})}
    if body:
        hdrs["Content-Length"] = str(len(body))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items() if v is not None)
    hostname, port = host.split(":")
    with socket.create_connection((hostname, int(port)), timeout=20) as s:
        s.sendall(head.encode("latin-1") + b"\r\n" + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    out = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        out[k.strip().lower()] = v.strip()
    return status, out, payload


def view(server, method, target, headers=None, body=b"", fields=("code", "errno", "error", "message", "details")):
    """What is compared: the status, the location relative to the host asked for, the cache headers, CORS and
    the error fields of a JSON body."""
    status, hdrs, payload = raw(server, method, target, headers, body)
    out = {"status": status}
    if "location" in hdrs:
        out["location"] = hdrs["location"]
    out["cache-control"] = hdrs.get("cache-control") if status == 307 else None
    out["expires"] = "expires" in hdrs if status == 307 else None
    out["cors"] = hdrs.get("access-control-allow-origin")
    if hdrs.get("content-type", "").startswith("application/json") and payload:
        body = json.loads(payload)
        if isinstance(body, dict) and "errno" in body:
            out.update({k: body.get(k) for k in fields})
    return out


@pytest.fixture
def pair(pool, target):
    """(reference, target) servers with the plugins; alice owns bucket `owned` and its collection `c` on both."""
    servers = pool.get("ref", "plugins"), pool.get(target, "plugins")
    for s in servers:
        api = Api(s, "alice")
        api.request("PUT", "/buckets/owned")
        api.request("PUT", "/buckets/owned/collections/c")
    return servers


def check(pair, method, target, headers=None, body=b"", **kw):
    ref, ours = (view(s, method, target, headers, body, **kw) for s in pair)
    assert ours == ref, f"{method} {target!r}"
    return ref


INVALID_PARENTS = [
    # An invalid parent id is a missing parent: 403 without access above it, 404 with.
    "/v1/buckets/a%20b/collections",
    "/v1/buckets/a*b/groups",
    "/v1/buckets/a%25b/history",
    "/v1/buckets/a%20b/collections/c",
    "/v1/buckets/a%20b/collections/c/records",
    "/v1/buckets/a%20b/collections/c/records/r",
    "/v1/buckets/owned/collections/a%20b/records",
    "/v1/buckets/owned/collections/a*b/records/r1",
    "/v1/buckets/owned/collections/%C3%A9/records",
    # The object's own id: 400 when the caller may go on, else 403.
    "/v1/buckets/owned/collections/a*b",
    "/v1/buckets/owned/groups/a%20b",
    "/v1/buckets/owned/collections/c/records/a%20b",
    # Snapshots: Kinto's plugin answers 404 for either invalid id; a missing collection is empty.
    "/v1/buckets/a%20b/snapshot/collections/c@123",
    "/v1/buckets/owned/snapshot/collections/a%20b@123",
    "/v1/buckets/owned/snapshot/collections/nothing@123",
    "/v1/buckets/nothing/snapshot/collections/c@123",
    # The default bucket checks the collection id first.
    "/v1/buckets/default/collections/a%20b",
    "/v1/buckets/default/collections/a%20b/records",
    "/v1/buckets/default/collections/a*b/records/r1",
]


@pytest.mark.parametrize("path", INVALID_PARENTS)
def test_invalid_ids_in_paths(pair, path):
    check(pair, "GET", path)


@pytest.mark.parametrize("path", ["/v1/buckets/owned/collections/a%20b/records", "/v1/buckets/owned/collections/a*b/records"])
def test_invalid_parent_on_writes(pair, path):
    check(pair, "POST", path, {"Content-Type": "application/json"}, b'{"data": {}}')
    check(pair, "DELETE", path)


REDIRECTS = [
    ("/buckets?a=1&b=2", {"Host": "example.com:9999", "Origin": ORIGIN}),
    ("/buckets", {"Host": "kinto.example.com"}),
    ("/v1/buckets/?a=1&b=%20", {"Host": "example.com", "Origin": ORIGIN}),
    ("/v1/buckets/owned/collections/", {"Host": "example.com"}),
    ("/v1/unknown/", {"Host": "example.com"}),
    ("/v1?x=1", {"Host": "example.com", "Origin": ORIGIN}),
    ("/v1/buckets%0A/", {"Host": "example.com"}),
    ("/a%01b", {"Host": "example.com"}),
    ("/a%20b/", {"Host": "example.com"}),
    # CR and LF are outside Kinto's version-prefix route: a 404, never a redirect.
    ("/buckets%0D%0AX-Injected:%20yes", {"Host": "example.com"}),
]


@pytest.mark.parametrize("path,headers", REDIRECTS)
def test_redirects(pair, path, headers):
    got = check(pair, "GET", path, headers)
    if got["status"] == 307:
        assert got["location"].startswith(f"http://{headers['Host']}/v1")


def test_redirect_preflight(pair):
    check(pair, "OPTIONS", "/buckets", {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})


UNDECODABLE = [
    "/v1/buckets/%ff",
    "/v1/buckets/owned/collections/%ff%fe",
    "/%ff",
    "/v1/buckets/owned/collections/c/records?title=%ff",
    "/v1/buckets/owned/collections/c/records?%ff=1",
    "/v1/buckets?_sort=%ff",
]


@pytest.mark.parametrize("path", UNDECODABLE)
def test_undecodable_requests(pair, path):
    check(pair, "GET", path)


BAD_BODIES = [
    ("PUT", "/v1/buckets/owned/collections/c/records/r1", "application/json", b'{"data": '),
    ("PUT", "/v1/buckets/owned/collections/c/records/r1", "application/json", b'{"data": {"a": "\xff"}}'),
    ("PUT", "/v1/buckets/owned/collections/c/records/r1", "application/json", b'{"data": {"a": "\xc3"}}'),
    ("PATCH", "/v1/buckets/owned/collections/c", "application/json-patch+json", b"[{"),
    ("PATCH", "/v1/buckets/owned/collections/c", "application/merge-patch+json", b"{"),
    ("POST", "/v1/batch", "application/json", b"{"),
]


@pytest.mark.parametrize("method,path,ctype,body", BAD_BODIES)
def test_bodies_that_are_not_json(pair, method, path, ctype, body):
    # The parser's own words differ (Kinto's is rapidjson's, with an offset): compared up to the first ':' of
    # each description, all else exactly.
    def shape(server):
        got = view(server, method, path, {"Content-Type": ctype}, body)
        cut = (lambda s: s.split(":")[0] if s.startswith("Invalid JSON") else s)
        got["message"] = cut(got["message"])
        got["details"] = [{**d, "description": cut(d["description"])} for d in got["details"]]
        return got
    ref, ours = (shape(s) for s in pair)
    assert ours == ref


def test_undecodable_utf8_body_says_what_kinto_says(pair):
    body = b'{"data": {"a": "\xff"}}'
    ref, ours = (view(s, "PUT", "/v1/buckets/owned/collections/c/records/r1", {"Content-Type": "application/json"},
                      body) for s in pair)
    assert ours == ref


def test_contribute_json(pair):
    # Same status, headers and keys; the content describes each project (see ARCHITECTURE.md).
    ref, ours = (raw(s, "GET", "/v1/contribute.json", {"Origin": ORIGIN}) for s in pair)
    assert ours[0] == ref[0] == 200
    for h in ("content-type", "access-control-allow-origin"):
        assert ours[1].get(h) == ref[1].get(h)
    ref_body, our_body = json.loads(ref[2]), json.loads(ours[2])
    assert set(our_body) <= set(ref_body)
    assert {"name", "description", "repository", "keywords"} <= set(our_body)
    for k, v in our_body.items():
        assert type(v) is type(ref_body[k])
    check(pair, "POST", "/v1/contribute.json")


@pytest.mark.parametrize("path", ["/v1/buckets/a%20b/collections", "/v1/buckets/owned/collections/a%20b/records"])
def test_invalid_parent_in_batch(pair, path):
    # The same rule through /batch (the sub-request's path is decoded as a top-level one is).
    def sub(server):
        api = Api(server, "alice")
        r = api.post("/batch", json={"requests": [{"method": "GET", "path": path.replace("%20", " ")[3:]}]})
        resp = r.json()["responses"][0]
        return resp["status"], {k: resp["body"].get(k) for k in ("errno", "details")}
    ref, ours = (sub(s) for s in pair)
    assert ours == ref
