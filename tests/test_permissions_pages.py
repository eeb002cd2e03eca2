"""`GET /permissions` paged across shards (issue 21): each shard sends only its part of the page (filtered, sorted
and cut past the token) and the gateway merges them. Entries of buckets spread over every shard, some objects whose
ACL no longer names the caller: following `Next-Page` gives exactly the unpaged list, for several sorts, filters
and page sizes, on the reference and ours alike."""

from urllib.parse import urlsplit

from api import Api, uid


def uris(api, query):
    r = api.get(f"/permissions?{query}")
    assert r.status_code == 200, r.text
    return [e["uri"] for e in r.json()["data"]]


def paged(api, query, limit):
    out, path, pages = [], f"/permissions?{query}&_limit={limit}", 0
    while path:
        r = api.get(path)
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert len(data) <= limit
        out.extend(e["uri"] for e in data)
        pages += 1
        assert pages < 100, "pages never end"
        nxt = r.headers.get("Next-Page")
        path = None
        if nxt:
            u = urlsplit(nxt)
            path = f"{u.path.removeprefix('/v1')}?{u.query}"
    return out


def test_pages_merge_into_the_whole_list(plugged):
    alice, dana = Api(plugged, "alice"), Api(plugged, uid("dana"))
    read = {"permissions": {"read": [dana.principal]}}
    buckets = [alice.create_bucket() for _ in range(6)]
    for i, bid in enumerate(buckets):
        alice.ok("PUT", f"/buckets/{bid}/collections/c", json=read)
        for r in ("r1", "r2", "r3")[: 1 + i % 3]:
            alice.ok("PUT", f"/buckets/{bid}/collections/c/records/{r}", json=read)
        # Shared once, then no longer naming dana.
        alice.ok("PUT", f"/buckets/{bid}/collections/c/records/gone", json=read)
        alice.ok("PUT", f"/buckets/{bid}/collections/c/records/gone",
                 json={"data": {}, "permissions": {"read": []}})
    scope = "in_bucket_id=" + ",".join(buckets)
    whole = uris(dana, scope)
    assert len(whole) == 6 + sum(1 + i % 3 for i in range(6))
    assert not any(u.endswith("/gone") for u in whole)
    for query in (scope, f"{scope}&_sort=uri", f"{scope}&_sort=resource_name,-id",
                  f"{scope}&_sort=bucket_id,uri&resource_name=record", f"{scope}&_sort=-record_id"):
        expected = uris(dana, query)
        for limit in (1, 4, 7):
            got = paged(dana, query, limit)
            assert got == expected, (query, limit)
    assert dana.head(f"/permissions?{scope}&_limit=2").headers["Total-Objects"] == str(len(whole))
