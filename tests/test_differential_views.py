"""Differential tests for Kinto's views at the edges (issue 23): a collection's `cache_expires`, and responses
that match the server's own OpenAPI document.

Each scenario runs on the reference Kinto and on the target; the transcripts are compared with
test_differential's normaliser, and what it leaves out (400 messages, caching headers) is compared explicitly.
"""

import re
from email.utils import parsedate_to_datetime

import jsonschema

from api import Api, uid, user_id
from test_differential import assert_same_transcripts, record_both


def cache_scenario(call, bid):
    coll = f"/buckets/{bid}/collections"
    call("PUT", f"/buckets/{bid}", json={"permissions": {"read": ["system.Everyone"]}})
    # Validation and coercion: colander's Int, i.e. Python's int().
    values = [60, "60", " -3 ", "+4", "1_000", 1.5, 1e3, True, False, None, "", [], {},
              "abc", "1.5", "0x10", "1__0", [1], {"a": 1}, ["x", True, None]]
    for i, value in enumerate(values):
        call("PUT", f"{coll}/v{i}", json={"data": {"cache_expires": value}})
    call("POST", coll, json={"data": {"id": "posted", "cache_expires": "7"}})
    call("POST", coll, json={"data": {"cache_expires": "x"}})
    # PATCH validates the merged object: the error names the field without `data.`.
    call("PUT", f"{coll}/p", json={"data": {"cache_expires": 7}})
    for value in ("5", "abc", None, 9):
        call("PATCH", f"{coll}/p", json={"data": {"cache_expires": value}})
    merge = {"Content-Type": "application/merge-patch+json"}
    call("PATCH", f"{coll}/p", data='{"data": {"cache_expires": "4"}}', headers=merge)
    call("PATCH", f"{coll}/p", data='{"data": {"cache_expires": null}}', headers=merge)
    jpatch = {"Content-Type": "application/json-patch+json"}
    for value in ('"8"', '"x"'):
        call("PATCH", f"{coll}/p", data=f'[{{"op": "add", "path": "/data/cache_expires", "value": {value}}}]',
             headers=jpatch)
    call("GET", f"{coll}/p")
    # Record reads: anonymous callers get the collection's caching, others no-cache.
    for value in (60, 0, -5, None):
        cid = f"e{value}".replace("-", "m")
        data = {} if value is None else {"cache_expires": value}
        call("PUT", f"{coll}/{cid}", json={"data": data})
        call("PUT", f"{coll}/{cid}/records/r1", json={"data": {"n": 1}})
        for path in ("records", "records/r1", "records/missing"):
            call("GET", f"{coll}/{cid}/{path}", user="anon")
            call("HEAD", f"{coll}/{cid}/{path}", user="anon")
        call("GET", f"{coll}/{cid}/records", user="anon", params={"_limit": 1})
        call("GET", f"{coll}/{cid}/records", user="alice")
        call("GET", f"{coll}/{cid}/records/r1", user="alice")
        call("GET", f"{coll}/{cid}", user="anon")


def caching(entry):
    """What the normaliser leaves out: 400 messages and details, caching headers (Expires as seconds from Date)."""
    h, body = {k.title(): v for k, v in entry["headers"].items()}, entry["body"]
    out = {"request": f"{entry['user']} {entry['method']} {entry['path']}",
           "cache-control": h.get("Cache-Control"), "pragma": h.get("Pragma")}
    if entry["status"] == 400 and isinstance(body, dict):
        out["message"], out["details"] = body.get("message"), body.get("details")
    if "Expires" in h:
        delta = parsedate_to_datetime(h["Expires"]) - parsedate_to_datetime(h["Date"])
        out["expires"] = delta.total_seconds()
    return out


def close(expected, actual):
    """Equal, but Expires may fall one second apart (two clocks read at different instants)."""
    if expected.keys() != actual.keys():
        return False
    return all(abs(e - actual[k]) <= 1 if k == "expires" else e == actual[k] for k, e in expected.items())


def test_cache_expires_matches_reference(pool, target):
    ref_rec, our_rec = record_both(pool, target, cache_scenario, uid("views"))
    assert_same_transcripts(ref_rec, our_rec)
    wrong = [(e, a) for e, a in zip(map(caching, ref_rec.entries), map(caching, our_rec.entries)) if not close(e, a)]
    assert not wrong, "\n".join(f"ref  {e}\nours {a}" for e, a in wrong[:10])


def schema_for(doc, method, path, status):
    """The response schema the document declares for this request and status (None when it declares none)."""
    for template, item in doc["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            responses = item[method.lower()]["responses"]
            response = responses.get(str(status), responses.get("default"))
            assert response is not None, f"{method} {template}: status {status} not declared"
            schema = response.get("schema")
            return None if schema is None else {**schema, "definitions": doc.get("definitions", {})}
    raise AssertionError(f"{method} {path}: no operation in the document")


def test_responses_match_own_openapi_document(pool, target):
    """An OpenAPI client validating responses against the server's own `/__api__` accepts every answer."""
    server = pool.get(target, "plugins")
    alice, bob, anon = Api(server, "alice"), Api(server, "bob"), Api(server)
    doc = anon.get("/__api__").json()
    bid = uid("api")
    b, c = f"/buckets/{bid}", f"/buckets/{bid}/collections/c"
    r = f"{c}/records"
    steps = [
        (anon, "GET", "/", {}), (anon, "GET", "/__heartbeat__", {}), (anon, "GET", "/__lbheartbeat__", {}),
        (anon, "GET", "/__version__", {}), (anon, "GET", "/__api__", {}),
        (alice, "PUT", b, {"json": {"data": {"title": "t"}}}), (alice, "GET", b, {}),
        (alice, "PATCH", b, {"json": {"data": {"x": 1}}}), (alice, "GET", "/buckets", {}),
        (alice, "POST", "/buckets", {"json": {"data": {"id": bid}}}),
        (alice, "PUT", f"{b}/groups/g", {"json": {"data": {"members": [user_id("bob")]}}}),
        (alice, "GET", f"{b}/groups", {}), (alice, "GET", f"{b}/groups/g", {}),
        (alice, "PUT", c, {"json": {"data": {"cache_expires": 5}}}), (alice, "GET", f"{b}/collections", {}),
        (alice, "POST", f"{b}/collections", {"json": {"data": {}}}),
        (alice, "POST", r, {"json": {"data": {"n": 1}}}), (alice, "PUT", f"{r}/r1", {"json": {"data": {"n": 2}}}),
        (alice, "PATCH", f"{r}/r1", {"json": {"data": {"n": 3}}}), (alice, "GET", f"{r}/r1", {}),
        (alice, "GET", r, {}), (alice, "GET", r, {"params": {"_limit": 1}}), (anon, "GET", r, {}),
        (alice, "GET", f"{b}/history", {}), (alice, "GET", "/permissions", {}),
        (alice, "POST", "/batch", {"json": {"requests": [{"method": "GET", "path": r},
                                                          {"method": "PUT", "path": f"{r}/r2", "body": {"data": {}}},
                                                          {"method": "GET", "path": f"{r}/missing"}]}}),
        # Errors.
        (alice, "GET", f"{r}/missing", {}), (bob, "GET", f"{r}/r1", {}), (anon, "PUT", f"{r}/r3", {"json": {}}),
        (alice, "PUT", f"{r}/r1", {"json": {"data": "x"}}),
        (alice, "PUT", f"{r}/r1", {"json": {"data": {}}, "headers": {"If-Match": '"1"'}}),
        (alice, "GET", r, {"params": {"_limit": "x"}}), (alice, "GET", r, {"headers": {"Accept": "text/html"}}),
        (alice, "POST", "/batch", {"json": {"requests": "x"}}),
        # Deletions last.
        (alice, "DELETE", f"{r}/r1", {}), (alice, "DELETE", r, {}), (alice, "DELETE", f"{b}/groups", {}),
        (alice, "DELETE", f"{b}/history", {}), (alice, "DELETE", c, {}), (alice, "DELETE", b, {}),
    ]
    if target == "ref":
        # The reference has no version file: its /__version__ is an undeclared 500. Its /permissions schema
        # requires `bucket_id` in every entry, which its own entries for root-level permissions lack.
        steps = [s for s in steps if s[2] not in ("/__version__", "/permissions")]
    problems = []
    for user, method, path, kw in steps:
        resp = user.request(method, path, **kw)
        schema = schema_for(doc, method, path, resp.status_code)
        if not resp.content:
            continue
        if schema is None:
            problems.append(f"{method} {path} -> {resp.status_code}: no schema declared")
            continue
        errors = [e.message for e in jsonschema.Draft4Validator(schema).iter_errors(resp.json())]
        if errors:
            problems.append(f"{method} {path} -> {resp.status_code}: {errors[:3]}")
    assert not problems, "\n".join(problems)
