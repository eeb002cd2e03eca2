"""_limit, Next-Page and paginate_by (kinto-api.md §4.6)."""

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from api import assert_error


def fill(api, count, bid=None):
    bid = bid or api.create_bucket()
    cid = api.create_collection(bid)
    url = f"/buckets/{bid}/collections/{cid}/records"
    for i in range(count):
        api.ok("PUT", f"{url}/r{i:02d}", json={"data": {"i": i, "even": i % 2 == 0}})
    return url


def follow(api, first_url):
    """All pages from first_url, following Next-Page verbatim; returns (pages of ids, Next-Page urls)."""
    pages, links = [], []
    r = api.get(first_url)
    while True:
        assert r.status_code == 200, r.text
        pages.append([o["id"] for o in r.json()["data"]])
        link = r.headers.get("Next-Page")
        if not link:
            return pages, links
        links.append(link)
        assert len(links) < 50, "pagination does not terminate"
        r = api.session.get(link, allow_redirects=False, timeout=30)


def test_limit_and_next_page_to_the_end(api):
    url = fill(api, 7)
    pages, links = follow(api, f"{url}?_limit=3")
    assert pages == [["r06", "r05", "r04"], ["r03", "r02", "r01"], ["r00"]]
    for link in links:
        # Absolute URL on the same server, repeating the query plus _limit and _token.
        assert link.startswith(api.root + url + "?"), link
        qs = parse_qs(urlsplit(link).query)
        assert qs["_limit"] == ["3"] and len(qs["_token"]) == 1


def test_next_page_keeps_filters_and_sort(api):
    url = fill(api, 9)
    pages, links = follow(api, f"{url}?_limit=2&even=true&_sort=i")
    assert pages == [["r00", "r02"], ["r04", "r06"], ["r08"]]
    qs = parse_qs(urlsplit(links[0]).query)
    assert qs["even"] == ["true"] and qs["_sort"] == ["i"]


def test_no_next_page_when_everything_fits(api):
    url = fill(api, 3)
    for query in ("", "?_limit=3", "?_limit=10", "?_limit=0"):
        r = api.get(url + query)
        assert "Next-Page" not in r.headers, query
        assert len(r.json()["data"]) == 3


def test_pagination_is_stable_under_inserts(api):
    # Keyset pagination: a record created between two pages neither shifts nor repeats items.
    url = fill(api, 4)
    r = api.get(f"{url}?_limit=2")
    first = [o["id"] for o in r.json()["data"]]
    api.ok("PUT", f"{url}/new", json={"data": {}})
    rest, _ = follow(api, r.headers["Next-Page"])
    assert first + sum(rest, []) == ["r03", "r02", "r01", "r00"]


def test_changes_between_pages_show_on_the_next_page(api):
    # The page after a `_token`'s is read ahead by kinto-rs (list_read_ahead): a delete and an update made
    # after it was read must show on it, as on a page read when asked.
    url = fill(api, 8)
    r = api.get(f"{url}?_limit=2")
    r = api.session.get(r.headers["Next-Page"], allow_redirects=False, timeout=30)
    assert [o["id"] for o in r.json()["data"]] == ["r05", "r04"]
    time.sleep(0.3)
    api.ok("DELETE", f"{url}/r03")
    api.ok("PATCH", f"{url}/r02", json={"data": {"moved": True}})
    rest, _ = follow(api, r.headers["Next-Page"])
    assert sum(rest, []) == ["r01", "r00"]


def test_limit_on_buckets_and_collections(api):
    bid = api.create_bucket()
    for i in range(3):
        api.create_collection(bid, f"c{i}")
    pages, _ = follow(api, f"/buckets/{bid}/collections?_limit=2")
    assert pages == [["c2", "c1"], ["c0"]]


def test_tampered_token_400(api):
    url = fill(api, 3)
    link = api.get(f"{url}?_limit=1").headers["Next-Page"]
    assert_error(api.session.get(link[:-8] + "AAAA", timeout=30), 400, 107)


def test_paginate_by(paged_api):
    url = fill(paged_api, 12)
    pages, links = follow(paged_api, url)
    assert [len(p) for p in pages] == [5, 5, 2]
    assert sum(pages, []) == [f"r{i:02d}" for i in range(11, -1, -1)]
    assert all(link.startswith(paged_api.root) for link in links)


@pytest.mark.parametrize("limit, sizes", [(3, [3, 3, 3, 3]), (10, [5, 5, 2])])
def test_limit_with_paginate_by(paged_api, limit, sizes):
    # The effective page size is min(_limit, paginate_by).
    url = fill(paged_api, 12)
    pages, _ = follow(paged_api, f"{url}?_limit={limit}")
    assert [len(p) for p in pages] == sizes


def test_paginate_by_exact_multiple(paged_api):
    url = fill(paged_api, 5)
    r = paged_api.get(url)
    assert len(r.json()["data"]) == 5
    assert "Next-Page" not in r.headers
