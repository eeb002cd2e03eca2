"""Lists longer than what the store hands a shard in one read (issue 21): every page of every sort, filter
and `_since` joins into the same list as one unpaginated read, in order, on every target; counts on HEAD."""

ROWS = 1300
PAGE = 250


def fill(api):
    """ROWS records in batches, then every 31st deleted (tombstones). Returns the records URL."""
    bid = api.create_bucket()
    cid = api.create_collection(bid)
    url = f"/buckets/{bid}/collections/{cid}/records"
    for start in range(0, ROWS, 25):
        requests = [{"method": "PUT", "path": f"{url}/r{i:04d}",
                     "body": {"data": {"i": i, "g": i % 5, "t": f"x{(i * 7) % 13:02d}"}}}
                    for i in range(start, min(start + 25, ROWS))]
        r = api.post("/batch", json={"requests": requests})
        assert r.status_code == 200 and all(s["status"] == 201 for s in r.json()["responses"]), r.text[:300]
    for start in range(0, ROWS, 31 * 25):
        requests = [{"method": "DELETE", "path": f"{url}/r{i:04d}"}
                    for i in range(start, min(start + 31 * 25, ROWS), 31)]
        r = api.post("/batch", json={"requests": requests})
        assert r.status_code == 200 and all(s["status"] == 200 for s in r.json()["responses"]), r.text[:300]
    return url


def pages(api, url):
    out = []
    r = api.get(url)
    while True:
        assert r.status_code == 200, r.text[:300]
        body = r.json()["data"]
        assert len(body) <= PAGE
        out.extend(body)
        link = r.headers.get("Next-Page")
        if not link:
            return out
        assert len(out) <= 2 * ROWS, "pagination does not terminate"
        r = api.session.get(link, allow_redirects=False, timeout=60)


def test_every_page_of_every_sort_and_filter(api):
    url = fill(api)
    everything = api.get(url).json()["data"]
    assert len(everything) == ROWS - len(range(0, ROWS, 31))
    mid = sorted(o["last_modified"] for o in everything)[ROWS // 2]
    for sort, first in (("", "-last_modified"), ("_sort=last_modified", "last_modified"), ("_sort=id", "id"),
                        ("_sort=-id", "-id"), ("_sort=t", "t"), ("_sort=-g,t", "-g")):
        for filt in ("", "g=2", f"_since={mid}", f"_before={mid}&g=1"):
            query = "&".join(q for q in (sort, filt) if q)
            whole = api.get(f"{url}?{query}").json()["data"]
            paged = pages(api, f"{url}?{query}&_limit={PAGE}")
            assert [o["id"] for o in paged] == [o["id"] for o in whole], query
            field, desc = first.lstrip("-"), first.startswith("-")
            keys = [o.get(field) for o in whole if not o.get("deleted")]
            assert keys == sorted(keys, reverse=desc), query
            if filt.startswith("_since"):
                # Tombstones newer than the bound are listed with `_since`.
                assert any(o.get("deleted") for o in whole), query
                assert all(o["last_modified"] > mid for o in whole), query
            if filt == "g=2":
                assert len(whole) == len([o for o in everything if o["g"] == 2]), query
                head = api.head(f"{url}?{query}")
                assert head.headers["Total-Records"] == str(len(whole)), query
