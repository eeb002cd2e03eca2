"""Kinto's quotas plugin (kinto-api.md §10.2; Kinto ≤ 19.x, so ours only: the reference 26.5 has no such plugin).

Profile `quotas`: collection_max_items 3, collection_max_bytes_per_item 500, bucket_max_bytes 3000. Over a limit,
a write gets 507 errno 121 with Kinto's message and changes nothing; deletions give the room back.
"""

import pytest

from api import Api, assert_error

pytestmark = pytest.mark.targets("single", "split")


@pytest.fixture
def qapi(pool, target):
    return Api(pool.get(target, "quotas"), "alice")


def test_capability_advertised(qapi):
    caps = qapi.ok("GET", "/").json()["capabilities"]
    assert caps["quotas"]["description"] == "Quotas Management on buckets and collections."


def test_bytes_per_item(qapi):
    bid = qapi.create_bucket()
    cid = qapi.create_collection(bid)
    url = f"/buckets/{bid}/collections/{cid}/records"
    r = qapi.post(url, json={"data": {"text": "x" * 600}})
    assert_error(r, 507, 121, "Maximum bytes per object exceeded (")
    assert qapi.ok("GET", url).json()["data"] == [], "the refused record was not written"
    qapi.ok("POST", url, json={"data": {"text": "x" * 100}}, status=201)


def test_collection_max_items_and_deletion_gives_room_back(qapi):
    bid = qapi.create_bucket()
    cid = qapi.create_collection(bid)
    url = f"/buckets/{bid}/collections/{cid}/records"
    ids = [qapi.create_record(bid, cid, {"i": i})["id"] for i in range(3)]
    r = qapi.put(f"{url}/fourth", json={"data": {"i": 4}})
    assert_error(r, 507, 121, "Collection maximum number of objects exceeded (4 > 3 objects).")
    assert qapi.get(f"{url}/fourth").status_code == 404
    # Updates do not count as new objects.
    qapi.ok("PATCH", f"{url}/{ids[0]}", json={"data": {"updated": True}})
    qapi.ok("DELETE", f"{url}/{ids[1]}")
    qapi.ok("PUT", f"{url}/fourth", json={"data": {"i": 4}}, status=201)


def test_bucket_max_bytes_counts_every_collection_and_a_deleted_collection_frees_its_bytes(qapi):
    bid = qapi.create_bucket()
    first, second = qapi.create_collection(bid), qapi.create_collection(bid)
    big = {"text": "y" * 350}  # ~435 bytes with id and last_modified: six fit in 3000, seven do not
    for cid in (first, second):
        for _ in range(3):
            qapi.create_record(bid, cid, big)
    third = qapi.create_collection(bid)
    r = qapi.post(f"/buckets/{bid}/collections/{third}/records", json={"data": big})
    assert_error(r, 507, 121, "Bucket maximum total size exceeded (")
    qapi.ok("DELETE", f"/buckets/{bid}/collections/{first}")
    qapi.ok("POST", f"/buckets/{bid}/collections/{third}/records", json={"data": big}, status=201)


def test_other_buckets_are_not_affected(qapi):
    full = qapi.create_bucket()
    cid = qapi.create_collection(full)
    for i in range(3):
        qapi.create_record(full, cid, {"i": i})
    other = qapi.create_bucket()
    ocid = qapi.create_collection(other)
    qapi.create_record(other, ocid, {"i": 0})


@pytest.mark.targets("single")  # the all-in-one serves the shards' metrics at the gateway's /__metrics__
def test_rejections_are_counted(qapi):
    def rejections():
        text = qapi.ok("GET", "/__metrics__").text
        lines = [l for l in text.splitlines() if l.startswith("kinto_quota_rejections_total")]
        return float(lines[0].split()[-1]) if lines else 0.0

    before = rejections()
    bid = qapi.create_bucket()
    cid = qapi.create_collection(bid)
    assert_error(qapi.post(f"/buckets/{bid}/collections/{cid}/records", json={"data": {"t": "z" * 700}}), 507, 121)
    assert rejections() == before + 1
