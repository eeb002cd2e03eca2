"""`GET /permissions` follows every change of what names a principal (issue 21: each shard answers from a
principal index kept in the write's own commit): an ACL that drops the principal, a deletion, and the cascades
of a collection's and a bucket's deletion, on the reference and ours alike."""

from api import Api, uid, user_id


def uris(api, bid):
    r = api.get(f"/permissions?bucket_id={bid}")
    assert r.status_code == 200, r.text
    return sorted(e["uri"] for e in r.json()["data"])


def test_entries_follow_acl_changes_and_cascades(plugged):
    alice, dana = Api(plugged, "alice"), Api(plugged, uid("dana"))
    bid = alice.create_bucket()
    b = f"/buckets/{bid}"
    read = {"permissions": {"read": [dana.principal]}}
    for c in ("c1", "c2"):
        alice.ok("PUT", f"{b}/collections/{c}", json=read)
        for r in ("r1", "r2"):
            alice.ok("PUT", f"{b}/collections/{c}/records/{r}", json=read)
    assert uris(dana, bid) == [f"{b}/collections/{c}{r}" for c in ("c1", "c2")
                               for r in ("", "/records/r1", "/records/r2")]
    # An ACL that no longer names dana, and a deletion.
    alice.ok("PUT", f"{b}/collections/c1/records/r1", json={"data": {}, "permissions": {"read": [user_id("x")]}})
    alice.ok("DELETE", f"{b}/collections/c1/records/r2")
    assert uris(dana, bid) == [f"{b}/collections/c1", f"{b}/collections/c2", f"{b}/collections/c2/records/r1",
                               f"{b}/collections/c2/records/r2"]
    # A collection's deletion takes its records' entries; recreated, it names nobody.
    alice.ok("DELETE", f"{b}/collections/c2")
    alice.ok("PUT", f"{b}/collections/c2", status=201)
    assert uris(dana, bid) == [f"{b}/collections/c1"]
    # Shared again, then the bucket's deletion takes everything.
    alice.ok("PUT", f"{b}/collections/c2/records/r9", json=read, status=201)
    assert uris(dana, bid) == [f"{b}/collections/c1", f"{b}/collections/c2/records/r9"]
    alice.ok("DELETE", b)
    assert uris(dana, bid) == []
    # Alice's own entries went with her bucket too.
    assert uris(alice, bid) == []
