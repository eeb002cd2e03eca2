"""_since / _before / _to and tombstones: what sync clients poll (kinto-api.md §4.3, §5.3)."""

import json

import pytest

from api import etag_value


@pytest.fixture
def history(api, records_url):
    """r0..r4 created in order, then r2 deleted; returns (url, timestamps of r0..r4, tombstone)."""
    ts = [api.ok("PUT", f"{records_url}/r{i}", json={"data": {"i": i}}).json()["data"]["last_modified"]
          for i in range(5)]
    tomb = api.ok("DELETE", f"{records_url}/r2").json()["data"]
    return records_url, ts, tomb


def listing(api, url):
    r = api.get(url)
    assert r.status_code == 200, r.text
    return r, r.json()["data"]


def test_since_includes_tombstones(api, history):
    url, ts, tomb = history
    r, data = listing(api, f"{url}?_since={ts[1]}")
    assert data == [tomb, {"i": 4, "id": "r4", "last_modified": ts[4]}, {"i": 3, "id": "r3", "last_modified": ts[3]}]
    # The list ETag is the unfiltered list timestamp (the tombstone's).
    assert etag_value(r) == tomb["last_modified"]


def test_since_accepts_a_quoted_etag(api, history):
    url, ts, _ = history
    _, plain = listing(api, f"{url}?_since={ts[1]}")
    _, quoted = listing(api, f'{url}?_since="{ts[1]}"')
    assert plain == quoted


def test_since_latest_etag_is_empty(api, history):
    url, _, _ = history
    etag = api.get(url).headers["ETag"]
    _, data = listing(api, f"{url}?_since={etag.strip(chr(34))}")
    assert data == []


def test_no_tombstones_without_timestamp_filter(api, history):
    url, _, _ = history
    _, data = listing(api, url)
    assert [o["id"] for o in data] == ["r4", "r3", "r1", "r0"]
    assert not any(o.get("deleted") for o in data)


def test_before_and_deprecated_to(api, history):
    url, ts, _ = history
    r, before = listing(api, f"{url}?_before={ts[2]}")
    assert [o["id"] for o in before] == ["r1", "r0"]
    assert "Alert" not in r.headers
    r, to = listing(api, f"{url}?_to={ts[2]}")
    assert to == before
    alert = json.loads(r.headers["Alert"])
    assert alert["code"] == "soft-eol"
    assert "_to is now deprecated" in alert["message"]


def test_since_and_other_filters_hide_tombstones(api, history):
    url, ts, _ = history
    _, data = listing(api, f"{url}?_since={ts[1]}&i=3")
    assert [o["id"] for o in data] == ["r3"]


def test_gt_last_modified_like_since(api, history):
    url, ts, _ = history
    _, a = listing(api, f"{url}?gt_last_modified={ts[1]}")
    _, b = listing(api, f"{url}?_since={ts[1]}")
    assert a == b


def test_since_zero_returns_everything_including_tombstones(api, history):
    url, _, tomb = history
    _, data = listing(api, f"{url}?_since=0")
    assert [o["id"] for o in data] == ["r2", "r4", "r3", "r1", "r0"]
    assert data[0] == tomb


def test_since_with_sort_and_limit(api, history):
    url, ts, _ = history
    r, data = listing(api, f"{url}?_since={ts[0]}&_sort=last_modified&_limit=2")
    assert [o["id"] for o in data] == ["r1", "r3"]
    assert "Next-Page" in r.headers


def test_total_objects_ignores_tombstones(api, history):
    url, ts, _ = history
    assert api.head(f"{url}?_since={ts[1]}").headers["Total-Objects"] == "2"
    assert api.head(url).headers["Total-Objects"] == "4"


def test_empty_collection_timestamp_is_stable(api, records_url):
    first = etag_value(api.get(records_url))
    assert etag_value(api.get(records_url)) == first
    created = api.ok("POST", records_url, json={"data": {}}).json()["data"]
    assert created["last_modified"] > first
    assert etag_value(api.get(records_url)) == created["last_modified"]


def test_recreated_record_clears_tombstone(api, history):
    url, _, _ = history
    again = api.ok("PUT", f"{url}/r2", json={"data": {"i": "again"}}, status=201).json()["data"]
    _, data = listing(api, f"{url}?_since=0")
    r2 = [o for o in data if o["id"] == "r2"]
    assert r2 == [again]
