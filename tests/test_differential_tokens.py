"""Differential tests (issue 23): a paginated plural DELETE's `_token` works once, and only a DELETE's token is
accepted by a DELETE (Kinto keeps each DELETE token's nonce in its cache and deletes it on use), on records,
collections, groups and buckets; transcripts compared with the reference Kinto (see test_differential.py).
"""

from api import uid
from test_differential import assert_same_transcripts, record_both


def next_page(r):
    return r.headers.get("Next-Page", "")


def tokens_scenario(call, bid):
    base = f"/buckets/{bid}"
    call("PUT", base)
    call("PUT", f"{base}/collections/c")
    records = f"{base}/collections/c/records"
    for i in range(6):
        call("PUT", f"{records}/r{i}", json={"data": {"n": i}})
    first = call("DELETE", f"{records}?_limit=2")
    second = call("DELETE", next_page(first))
    call("DELETE", next_page(first))  # used: 400
    # A GET may read a DELETE's token without using it up.
    call("GET", next_page(second))
    # Kinto's order: permissions, the parent, then the token.
    call("DELETE", next_page(second), user="anon")
    call("DELETE", next_page(second), user="bob")
    call("DELETE", next_page(second), headers={"If-Match": '"123"'})
    call("DELETE", next_page(second).replace("/collections/c/", "/collections/missing/"))
    call("DELETE", next_page(second))
    call("DELETE", next_page(second))
    call("GET", records)
    # A GET's token was never kept: a DELETE refuses it.
    for i in range(4):
        call("PUT", f"{records}/s{i}", json={"data": {"n": i}})
    page = call("GET", f"{records}?_limit=2&_sort=n")
    call("DELETE", next_page(page))
    call("GET", next_page(page))
    call("GET", records)
    # The last page of a DELETE has no Next-Page; a foreign but well-formed token is refused.
    call("DELETE", f"{records}?_limit=10")
    # Groups and collections.
    for i in range(3):
        call("PUT", f"{base}/groups/g{i}", json={"data": {"members": []}})
        call("PUT", f"{base}/collections/k{i}")
    for plural in ("groups", "collections"):
        page = call("DELETE", f"{base}/{plural}?_limit=2")
        call("DELETE", next_page(page))
        call("DELETE", next_page(page))
        call("GET", f"{base}/{plural}")
    # Batch sub-requests follow the same rule.
    for i in range(3):
        call("PUT", f"{base}/groups/h{i}", json={"data": {"members": []}})
    page = call("DELETE", f"{base}/groups?_limit=1")
    path = next_page(page).split("/v1", 1)[1]
    call("POST", "/batch", json={"requests": [{"method": "DELETE", "path": path}, {"method": "DELETE", "path": path}]})


def test_delete_tokens_work_once(pool, target):
    bid = uid("tok")
    ref_rec, our_rec = record_both(pool, target, tokens_scenario, bid)
    assert_same_transcripts(ref_rec, our_rec)
    statuses = [e["status"] for e in ref_rec.entries]
    assert statuses.count(400) >= 5, statuses


def buckets_scenario(call, tag):
    # A user of their own. One bucket a page: buckets of
    # different shards deleted at once may share a millisecond here (one bucket-list clock per shard).
    for i in range(4):
        call("PUT", f"/buckets/{tag}b{i}", user="solo")
    # Only this test's buckets: other tests share the server, and some share their buckets with everyone.
    mine = f"like_id={tag}b*"
    first = call("DELETE", f"/buckets?_limit=1&_sort=id&{mine}", user="solo")
    call("DELETE", next_page(first), user="solo")
    call("DELETE", next_page(first), user="solo")
    call("GET", f"/buckets?_sort=id&{mine}", user="solo")


def test_delete_buckets_tokens_work_once(pool, target):
    # Also: every shard deletes only what the merged page holds.
    tag = uid("")
    users = {"solo": (f"solo{tag}", "pw")}
    ref_rec, our_rec = record_both(pool, target, buckets_scenario, tag, users=users)
    assert_same_transcripts(ref_rec, our_rec)
