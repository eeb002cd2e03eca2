"""`Total-Records` on HEAD of plural endpoints follows every kind of write (issue 21: the unfiltered count
comes from a counter kept in each write's commit, a filtered or shared one from the walk): creates, updates,
deletions, recreations over tombstones, batches, plural deletes and a collection's deletion."""


def total(api, url):
    r = api.head(url)
    assert r.status_code == 200, r.status_code
    assert r.headers["Total-Records"] == r.headers["Total-Objects"]
    return int(r.headers["Total-Records"])


def batch(api, requests, status):
    r = api.post("/batch", json={"requests": requests})
    assert r.status_code == 200 and all(s["status"] == status for s in r.json()["responses"]), r.text[:300]


def test_records_count_follows_every_write(api, bucket):
    cid = api.create_collection(bucket)
    url = f"/buckets/{bucket}/collections/{cid}/records"
    assert total(api, url) == 0
    batch(api, [{"method": "PUT", "path": f"{url}/r{i}", "body": {"data": {"g": i % 2}}} for i in range(6)], 201)
    assert total(api, url) == 6
    api.ok("PATCH", f"{url}/r0", json={"data": {"x": 1}})
    api.ok("PUT", f"{url}/r1", json={"data": {"g": 1}})
    assert total(api, url) == 6
    api.ok("DELETE", f"{url}/r2")
    assert total(api, url) == 5
    # Recreated over its tombstone.
    api.ok("PUT", f"{url}/r2", json={"data": {"g": 0}}, status=201)
    assert total(api, url) == 6
    # Filters are counted by the walk, and the unfiltered count does not see tombstones.
    assert total(api, f"{url}?g=1") == 3
    assert total(api, f"{url}?_limit=2") == 6
    batch(api, [{"method": "DELETE", "path": f"{url}/r{i}"} for i in (3, 4)], 200)
    assert total(api, url) == 4
    assert total(api, f"{url}?_since=0") == 4
    api.ok("DELETE", f"{url}?g=0")
    assert total(api, url) == 2
    api.ok("DELETE", url)
    assert total(api, url) == 0
    # The collection's deletion takes its records, and a new one of the same name starts empty.
    api.create_record(bucket, cid, {"a": 1})
    api.ok("DELETE", f"/buckets/{bucket}/collections/{cid}")
    api.create_collection(bucket, cid)
    assert total(api, url) == 0
    api.create_record(bucket, cid, {"a": 1})
    assert total(api, url) == 1


def test_collections_and_groups_count(api, bucket):
    colls, groups = f"/buckets/{bucket}/collections", f"/buckets/{bucket}/groups"
    for _ in range(3):
        api.create_collection(bucket)
    cid = api.create_collection(bucket)
    api.ok("PUT", f"{groups}/g1", json={"data": {"members": []}}, status=201)
    assert (total(api, colls), total(api, groups)) == (4, 1)
    api.ok("DELETE", f"{colls}/{cid}")
    api.ok("DELETE", f"{groups}/g1")
    assert (total(api, colls), total(api, groups)) == (3, 0)


def test_shared_records_count_what_the_caller_sees(api, bob, bucket):
    cid = api.create_collection(bucket)
    url = f"/buckets/{bucket}/collections/{cid}/records"
    for i in range(4):
        perms = {"read": [bob.principal]} if i % 2 else None
        api.create_record(bucket, cid, {"i": i}, rid=f"r{i}", permissions=perms)
    assert total(api, url) == 4
    assert total(bob, url) == 2


def test_a_head_answers_the_count_alone(api, bob, bucket, paged_api):
    """Kinto counts and returns before it pages: no `Next-Page` on a HEAD, whether the count comes from the counter
    (unfiltered, the whole list visible), from the walk (filtered), or for a caller who sees only what is shared
    with them; nor with `paginate_by` smaller than the list."""
    cid = api.create_collection(bucket)
    url = f"/buckets/{bucket}/collections/{cid}/records"
    batch(api, [{"method": "PUT", "path": f"{url}/r{i}",
                 "body": {"data": {"g": i % 2}, "permissions": {"read": [bob.principal] if i < 3 else []}}}
                for i in range(6)], 201)
    for query, count, who in (("?_limit=2", 6, api), ("?_limit=1&g=1", 3, api), ("?gt_g=-1&_limit=1", 6, api),
                              ("?_limit=1", 3, bob)):
        r = who.head(url + query)
        assert r.status_code == 200, (query, r.status_code)
        assert r.headers["Total-Records"] == str(count), query
        assert "Next-Page" not in r.headers, (query, r.headers.get("Next-Page"))
        assert not r.content
    paged_bucket = paged_api.create_bucket()
    paged_cid = paged_api.create_collection(paged_bucket)
    paged = f"/buckets/{paged_bucket}/collections/{paged_cid}/records"
    batch(paged_api, [{"method": "PUT", "path": f"{paged}/r{i}", "body": {"data": {}}} for i in range(7)], 201)
    r = paged_api.head(paged)
    assert r.headers["Total-Records"] == "7" and "Next-Page" not in r.headers
    assert "Next-Page" in paged_api.get(paged).headers
