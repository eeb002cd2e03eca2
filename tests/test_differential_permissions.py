"""Differential test of `GET /permissions` (issue 23): entries granted through groups, inherited
permissions, filters, sorting and paging, on the reference and on ours (plugins profile).

The servers are shared with other tests, so every list is filtered on this scenario's bucket ids.
"""

from api import uid, user_id
from test_differential import assert_same_transcripts, record_both


def permissions_scenario(call, bid, other):
    bob, group = user_id("bob"), f"/buckets/{bid}/groups/g"
    call("PUT", f"/buckets/{bid}")
    call("PUT", f"{group}", json={"data": {"members": [bob]}})
    call("PUT", f"/buckets/{bid}", json={"permissions": {"read": [group]}})
    call("PUT", f"/buckets/{bid}/collections/c", json={"permissions": {"write": [group]}})
    call("PUT", f"/buckets/{bid}/collections/c/records/r1")
    call("PUT", f"/buckets/{bid}/collections/c/records/r2", json={"permissions": {"read": [bob]}})
    call("PUT", f"/buckets/{bid}/collections/d", json={"permissions": {"record:create": [group]}})
    call("PUT", f"/buckets/{bid}/groups/h", json={"data": {"members": []}, "permissions": {"read": [group]}})
    # A second bucket (another shard, perhaps) whose group holds bob too, and an object there granting it.
    call("PUT", f"/buckets/{other}")
    call("PUT", f"/buckets/{other}/groups/k", json={"data": {"members": [bob]}})
    call("PUT", f"/buckets/{other}/collections/e", json={"permissions": {"read": [f"/buckets/{other}/groups/k"]}})
    both = f"in_bucket_id={bid},{other}"
    for user in ("bob", "alice"):
        call("GET", f"/permissions?{both}", user=user)
        call("HEAD", f"/permissions?{both}", user=user)
    for query in (f"bucket_id={bid}", "resource_name=collection&" + both, "resource_name=group&" + both,
                  f"{both}&_sort=uri", f"{both}&_sort=resource_name", f"{both}&_sort=-resource_name,id",
                  f"{both}&_fields=uri", f"{both}&like_uri=collections", f"has_collection_id=true&{both}",
                  f"{both}&_since=0", f"{both}&id=c", f"{both}&collection_id=c",
                  # Kinto ignores what concerns timestamps (entries have none) and checks the rest.
                  f"{both}&_before=0", f"{both}&last_modified=1", f"{both}&min_last_modified=1",
                  f"{both}&_sort=last_modified", f"{both}&_sort=-last_modified,resource_name",
                  f"{both}&_sort=foo", f"{both}&_fields=foo", f"{both}&_fields=uri,permissions",
                  f"{both}&_fields=uri,resource_name", f"uri=/buckets/{bid}/collections/c",
                  f"{both}&_limit=0", f"{both}&_since=abc", f"{both}&_token=abc", f"{both}&in_resource_name=bucket,group",
                  f"{both}&permissions=read", f"{both}&account_id=x", f"{both}&_fields=id,bucket_id",
                  f"{both}&gt_last_modified=", f"{both}&has_last_modified=x", f"{both}&max_last_modified=abc",
                  f"{both}&not_last_modified=1", f"{both}&deleted=true", f"has_deleted=false&{both}",
                  # A `has_` filter replaces what the filters before it decided (Kinto's in-memory filtering;
                  # the servers are shared, so a bucket filter comes last).
                  f"resource_name=root&has_collection_id=false&{both}"):
        call("GET", f"/permissions?{query}", user="bob")
    # Pages, followed to the end, under several sorts.
    for query in (f"{both}&_limit=2", f"{both}&_limit=1&_sort=resource_name",
                  f"{both}&_limit=3&_sort=-id,uri"):
        page = call("GET", f"/permissions?{query}", user="bob")
        for _ in range(10):
            if "Next-Page" not in page.headers:
                break
            page = call("GET", page.headers["Next-Page"], user="bob")
    call("HEAD", f"/permissions?{both}&_limit=1", user="bob")
    call("HEAD", f"/permissions?{both}&resource_name=record", user="bob")
    # Membership changes are seen at once.
    call("PATCH", group, json={"data": {"members": []}})
    call("GET", f"/permissions?{both}", user="bob")
    call("PATCH", group, json={"data": {"members": [bob]}})
    call("GET", f"/permissions?{both}", user="bob")
    call("DELETE", group)
    call("GET", f"/permissions?{both}", user="bob")
    call("GET", f"/permissions?{both}", user="anon")
    call("DELETE", f"/buckets/{bid}")
    call("DELETE", f"/buckets/{other}")


def test_permissions_match_reference(pool, target):
    ref_rec, our_rec = record_both(pool, target, permissions_scenario, uid("perm"), uid("permo"), plugins=True)
    assert_same_transcripts(ref_rec, our_rec)
