"""Hostile input costs bounded work and never freezes or crashes a server (the hardening issue).

Each finding of the issue has a test here: `like_` patterns that backtracked exponentially, deep dotted field
paths, ids and members beyond what a storage engine accepts, plural deletes of never-written lists that never
answered, and the heartbeat staying responsive while costly requests run.

Most tests run on ours only: the reference Kinto has none of these bounds (its ids and field paths are
unbounded, and its memory backend's `like_` is a backtracking regular expression that would hang the run).
"""

import statistics
import threading
import time

import pytest
import requests

from api import Api, assert_error, uid

OURS = pytest.mark.targets("single", "split")

# kinto_proto::limits, as the server enforces them.
MAX_ID_BYTES = 8192
MAX_PRINCIPAL_BYTES = 2 * MAX_ID_BYTES + 64
MAX_FIELD_BYTES = 256
MAX_FIELD_DEPTH = 32
MAX_FILTERS = 32
MAX_PATTERN_CHARS = 1024


def records(bid, cid):
    return f"/buckets/{bid}/collections/{cid}/records"


@OURS
def test_backtracking_like_patterns_answer_at_once(api, collection):
    """The issue's reproduction: this pattern ran for minutes against 64 `a`s; now it answers, empty."""
    url = records(*collection)
    api.ok("PUT", f"{url}/r", json={"data": {"t": "a" * 64}})
    hostile = "*a" * 10 + "*b"
    r = api.get(url, params={"like_t": hostile}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == []
    # The same shape that does match still matches.
    r = api.get(url, params={"like_t": "*a" * 10 + "*"}, timeout=10)
    assert [o["id"] for o in r.json()["data"]] == ["r"]


@OURS
def test_like_patterns_are_bounded_in_length(api, collection):
    url = records(*collection)
    api.ok("PUT", f"{url}/r", json={"data": {"t": "ab" * 50_000}})
    longest = "*a" * (MAX_PATTERN_CHARS // 2 - 1) + "*b"
    assert len(longest) == MAX_PATTERN_CHARS
    r = api.get(url, params={"like_t": longest}, timeout=10)
    assert r.status_code == 200, r.text
    assert [o["id"] for o in r.json()["data"]] == ["r"]
    body = assert_error(api.get(url, params={"like_t": longest + "b"}), 400, 107)
    assert body["details"][0]["name"] == "like_t"


@OURS
@pytest.mark.parametrize("param", ["_sort", "filter", "_fields"])
def test_deep_field_paths_are_400(api, collection, param):
    """The issue's `_sort` 1,000 levels deep took 19 s; paths past the bounds are refused, those within work."""
    url = records(*collection)
    deep = ".".join(["a"] * 1000) + ".b"
    at_depth = ".".join(["a"] * (MAX_FIELD_DEPTH - 1)) + ".b"
    nested = {"b": 1}
    for _ in range(MAX_FIELD_DEPTH - 1):
        nested = {"a": nested}
    api.ok("PUT", f"{url}/r", json={"data": nested})

    def query(field):
        return {"_sort": field} if param == "_sort" else {field: 1} if param == "filter" else {"_fields": field}

    assert_error(api.get(url, params=query(deep)), 400, 107)
    assert_error(api.get(url, params=query("x" * (MAX_FIELD_BYTES + 1))), 400, 107)
    r = api.get(url, params=query(at_depth))
    assert r.status_code == 200, r.text
    assert [o["id"] for o in r.json()["data"]] == ["r"]
    if param == "_fields":
        assert_error(api.get(f"{url}/r", params=query(deep)), 400, 107)
        assert api.get(f"{url}/r", params=query(at_depth)).json()["data"]["a"]["a"]


@OURS
def test_filter_count_is_bounded(api, collection):
    url = records(*collection)
    many = {f"f{i}": i for i in range(MAX_FILTERS)}
    assert api.get(url, params=many).status_code == 200
    assert_error(api.get(url, params={**many, "one_more": 1}), 400, 107)


@OURS
def test_ids_beyond_the_bound_are_400_never_a_crash(api, bucket):
    """Ids of 64 KiB panicked inside the storage engine (no answer at all); every id now has a bound."""
    cid = api.create_collection(bucket)
    url = records(bucket, cid)
    ok_id = "r" * MAX_ID_BYTES
    assert api.put(f"{url}/{ok_id}", json={"data": {}}).status_code == 201
    assert api.get(f"{url}/{ok_id}").json()["data"]["id"] == ok_id
    long_id = "r" * (MAX_ID_BYTES + 1)
    huge_id = "r" * 66_000  # over the engine's key limit, and under hyper's URI limit only in a body
    for path in (f"{url}/{long_id}", f"/buckets/{long_id}", f"/buckets/{bucket}/collections/{long_id}",
                 f"/buckets/{bucket}/groups/{long_id}"):
        assert_error(api.put(path, json={"data": {}}), 400, 107)
    for path, body in ((url, {"data": {"id": huge_id}}), (f"/buckets/{bucket}/collections", {"data": {"id": huge_id}}),
                       ("/buckets", {"data": {"id": huge_id}})):
        assert_error(api.post(path, json=body), 400, 107)
    assert_error(api.get(f"{url}/{long_id}"), 400, 107)
    assert api.get("/__heartbeat__").status_code == 200


@OURS
def test_group_members_are_bounded(api, bucket):
    url = f"/buckets/{bucket}/groups/{uid('g')}"
    fits = "account:" + "m" * (MAX_PRINCIPAL_BYTES - len("account:"))
    assert api.put(url, json={"data": {"members": [fits]}}).status_code == 201
    body = assert_error(api.put(url, json={"data": {"members": [fits + "m"]}}), 400, 107)
    assert body["details"][0]["name"] == "data.members"
    huge = "m" * 70_000
    assert_error(api.put(url, json={"data": {"members": [huge]}}), 400, 107)
    assert_error(api.patch(url, json={"data": {"members": [huge]}}), 400, 107)
    assert api.get(url).json()["data"]["members"] == [fits]


@OURS
def test_account_ids_beyond_the_bound_are_400_for_anyone(pool, target):
    """Anonymous sign-up could crash a shard with a 64 KiB account id; a 64 KiB Basic user name likewise."""
    server = pool.get(target, "plugins")
    anon = Api(server)
    long_id = "a" * (MAX_ID_BYTES + 1)
    assert_error(anon.put(f"/accounts/{long_id}", json={"data": {"password": "x"}}), 400, 107)
    assert_error(anon.post("/accounts", json={"data": {"id": "a" * 66_000, "password": "x"}}), 400, 107)
    # A user name that cannot be an account authenticates through the next policy (basicauth).
    r = requests.get(server.url + "/", auth=("u" * 70_000, "pw"), timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["id"].startswith("basicauth:")
    assert anon.get("/__heartbeat__").status_code == 200


# Every plural endpoint whose list a fresh bucket has never written: a DELETE of one took the bucket's write
# lock and then waited for it again, forever. Kinto answers all of these at once: all targets.
@pytest.mark.parametrize("plural", ["records", "groups", "collections", "history"])
def test_plural_delete_of_a_never_written_list_answers(api, plural):
    bid = api.create_bucket()
    if plural == "records":
        path = records(bid, api.create_collection(bid))
    elif plural == "history":
        path = f"/buckets/{bid}/history"
    else:
        path = f"/buckets/{bid}/{plural}"
    r = api.delete(path, timeout=10)
    if plural == "history":
        # The history plugin is off in the default profile: no such endpoint, on Kinto as on ours.
        assert r.status_code == 404, r.text
        return
    assert r.status_code == 200, r.text
    assert r.json()["data"] == []
    # And the list is usable afterwards.
    assert api.get(path, timeout=10).status_code == 200


def test_plural_delete_of_never_written_accounts_and_history_answers(pool, target):
    server = pool.get(target, "plugins")
    # The account `admin` (account_write_principals), created as test_accounts.py creates it: whichever
    # test comes first on this shared server creates it.
    Api(server).put("/accounts/admin", json={"data": {"password": "admin-pw"}})
    admin = Api(server, "admin", "admin-pw")
    alice = Api(server, uid("alice"))
    bid = alice.create_bucket()
    r = alice.delete(f"/buckets/{bid}/history", timeout=10)
    assert r.status_code == 200, r.text
    r = admin.delete("/accounts", timeout=10)
    assert r.status_code == 200, r.text


@OURS
def test_heartbeat_answers_while_costly_requests_run(api, collection):
    """Lists longer than a few hundred rows are filtered and sorted off the runtime's worker threads, so
    the heartbeat (and every short request) keeps answering while they run."""
    url = records(*collection)
    blob = "ab" * 2000
    batch = [{"method": "PUT", "path": f"/v1{url}/r{i:04d}", "body": {"data": {"t": blob, "n": i % 97}}}
             for i in range(25)]
    for start in range(0, 600, 25):
        reqs = [dict(b, path=f"/v1{url}/r{start + i:04d}") for i, b in enumerate(batch)]
        api.ok("POST", "/batch", json={"requests": reqs}, status=200)
    hostile = {"like_t": "*a" * (MAX_PATTERN_CHARS // 2 - 1) + "*c", "_sort": "n,-t,a.b.c", "_limit": 10}
    stop = time.monotonic() + 4
    answered = []

    def attack():
        s = Api(api.server, api.user)
        while time.monotonic() < stop:
            r = s.get(url, params=hostile, timeout=30)
            answered.append(r.status_code)

    threads = [threading.Thread(target=attack) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    latencies = []
    while time.monotonic() < stop - 0.5:
        t0 = time.monotonic()
        r = requests.get(api.root + "/__heartbeat__", timeout=5)
        latencies.append(time.monotonic() - t0)
        assert r.status_code == 200, r.text
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert answered and set(answered) == {200}, answered
    # The acceptance bound is 100 ms; the median is what we hold it to (a probe can land on a busy core).
    assert statistics.median(latencies) < 0.1, latencies
    assert max(latencies) < 1.0, latencies


@OURS
def test_requests_hyper_cannot_parse_get_a_status_and_the_server_goes_on(api):
    """hyper answers these itself, with no body (ARCHITECTURE.md, known differences); what reaches the
    application answers in Kinto's JSON format."""
    import socket
    from urllib.parse import urlsplit

    origin = urlsplit(api.root)
    raw_requests = [
        b"GARBAGE\r\n\r\n",
        b"GET /v1/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET /v1/" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/ HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n",
    ]
    for raw in raw_requests:
        with socket.create_connection((origin.hostname, origin.port), timeout=10) as s:
            s.sendall(raw)
            status_line = s.recv(4096).split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1.1 4"), (raw[:40], status_line)
    assert_error(api.get("/buckets/%FF%FE"), 400, 107)
    assert api.get("/__heartbeat__").status_code == 200


@OURS
@pytest.mark.parametrize("seconds", [2**63 - 1, -(2**63)])
def test_extreme_cache_expires_never_breaks_record_reads(api, anon, bucket, seconds):
    """A collection's `cache_expires` may be any integer; the `Expires` date it implies is clamped."""
    cid = api.create_collection(bucket, data={"cache_expires": seconds})
    api.ok("PUT", f"/buckets/{bucket}", json={"permissions": {"read": ["system.Everyone"]}}, status=200)
    r = anon.get(records(bucket, cid))
    assert r.status_code == 200, r.text
    assert "Expires" in r.headers
