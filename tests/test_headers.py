"""Backoff and CORS headers (kinto-api.md §8.4, §9.1, §9.2)."""

import pytest

ORIGIN = "http://127.0.0.1:3000"  # a local web app; only a header value, nothing is sent there


def test_no_backoff_by_default(api):
    assert "Backoff" not in api.get("/").headers


def test_backoff_on_every_response(backoff_api):
    bid = backoff_api.create_bucket()
    responses = [
        backoff_api.get("/"),
        backoff_api.get(f"/buckets/{bid}"),
        backoff_api.get(f"/buckets/{bid}/collections/missing"),  # errors too
        backoff_api.anonymous().get(f"/buckets/{bid}"),
        backoff_api.post("/batch", json={"requests": [{"path": "/"}]}),
    ]
    for r in responses:
        assert r.headers.get("Backoff") == "10", (r.request.url, r.status_code, dict(r.headers))


def test_cors_allow_origin_only_with_origin(api, records_url):
    r = api.get(records_url, headers={"Origin": ORIGIN})
    assert r.headers["Access-Control-Allow-Origin"] in ("*", ORIGIN)
    expose = {h.strip().lower() for h in r.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"etag", "next-page", "backoff", "last-modified", "alert", "retry-after"} <= expose
    assert "Access-Control-Allow-Origin" not in api.get(records_url).headers


def test_cors_on_errors(anon, records_url):
    r = anon.get(records_url, headers={"Origin": ORIGIN})
    assert r.status_code == 401
    assert r.headers["Access-Control-Allow-Origin"] in ("*", ORIGIN)


@pytest.mark.parametrize("path_kind, method, expected", [
    ("object", "PUT", {"GET", "PUT", "PATCH", "DELETE"}),
    ("plural", "POST", {"GET", "POST", "DELETE"}),
    ("batch", "POST", {"POST"}),
])
def test_cors_preflight(anon, records_url, path_kind, method, expected):
    path = {"object": f"{records_url}/r1", "plural": records_url, "batch": "/batch"}[path_kind]
    r = anon.request("OPTIONS", path, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type,if-match"})
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] in ("*", ORIGIN)
    methods = {m.strip() for m in r.headers["Access-Control-Allow-Methods"].split(",")}
    assert expected <= methods
    allowed = {h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "if-match"} <= allowed
    assert int(r.headers["Access-Control-Max-Age"]) == 3600


def test_cors_preflight_needs_request_method(anon, records_url):
    r = anon.request("OPTIONS", f"{records_url}/r1", headers={"Origin": ORIGIN})
    assert r.status_code == 400


def test_security_headers(api):
    r = api.get("/")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]


def _header_set(r, name):
    return {h.strip().lower() for h in r.headers.get(name, "").split(",") if h.strip()}


def test_exposed_headers_follow_endpoint_and_method(api, records_url):
    api.ok("PUT", f"{records_url}/r1", json={"data": {}})
    base = {"alert", "backoff", "content-length", "content-type", "retry-after"}
    reads = base | {"cache-control", "etag", "expires", "last-modified", "pragma"}
    assert _header_set(api.put(f"{records_url}/r2", json={"data": {}}), "Access-Control-Expose-Headers") == base
    assert _header_set(api.get(f"{records_url}/r1"), "Access-Control-Expose-Headers") == reads
    assert _header_set(api.get(records_url), "Access-Control-Expose-Headers") == reads | {"next-page"}
    head = api.head(records_url)
    assert head.headers["Content-Type"] == "application/json"
    assert _header_set(head, "Access-Control-Expose-Headers") == reads | {"next-page", "total-objects",
                                                                           "total-records"}
    assert _header_set(api.get("/"), "Access-Control-Expose-Headers") == base


@pytest.mark.parametrize("method, path, allow", [
    ("PUT", "/buckets", "HEAD, GET, POST, DELETE, OPTIONS"),
    ("POST", "/buckets/b1", "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"),
    ("POST", "/", "GET, HEAD, OPTIONS"),
    ("GET", "/batch", "POST, OPTIONS"),
])
def test_method_not_allowed_names_allowed_methods(api, method, path, allow):
    r = api.request(method, path, json={})
    assert r.status_code == 405 and r.json()["errno"] == 115
    assert r.headers["Allow"] == allow


def test_preflight_only_for_the_endpoint_methods(anon, records_url):
    r = anon.request("OPTIONS", "/buckets", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "PUT"})
    assert r.status_code == 400
    assert r.json()["details"] == [{"location": "header", "name": "Access-Control-Request-Method",
                                    "description": "Method not allowed"}]
    r = anon.request("OPTIONS", records_url, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
    assert _header_set(r, "Access-Control-Allow-Methods") == {"delete", "get", "head", "options", "post"}
    assert "total-objects" in _header_set(r, "Access-Control-Allow-Headers")
    r = anon.request("OPTIONS", "/nothing", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
    assert r.status_code == 404 and r.json()["errno"] == 111
    r = anon.request("OPTIONS", records_url)
    assert [d["name"] for d in r.json()["details"]] == ["Access-Control-Request-Method", "Origin"]
