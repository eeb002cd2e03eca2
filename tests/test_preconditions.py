"""ETag / Last-Modified and If-Match / If-None-Match (kinto-api.md §5.1, §5.2)."""

from email.utils import parsedate_to_datetime

import pytest

from api import assert_error, etag_value


@pytest.fixture
def rec(api, records_url):
    """(url, current data) of an existing record."""
    url = f"{records_url}/r1"
    data = api.ok("PUT", url, json={"data": {"n": 1}}).json()["data"]
    return url, data


def quoted(ts):
    return f'"{ts}"'


def test_etag_and_last_modified(api, rec):
    url, data = rec
    r = api.get(url)
    assert etag_value(r) == data["last_modified"]
    # Last-Modified is the same instant at second resolution.
    assert int(parsedate_to_datetime(r.headers["Last-Modified"]).timestamp()) == data["last_modified"] // 1000


def test_plural_etag_is_the_list_timestamp(api, records_url, rec):
    _, data = rec
    r = api.get(records_url)
    assert etag_value(r) == data["last_modified"]
    assert "Last-Modified" in r.headers
    tomb = api.ok("DELETE", rec[0]).json()["data"]
    assert etag_value(api.get(records_url)) == tomb["last_modified"]


def test_if_none_match_304(api, rec, records_url):
    url, data = rec
    for method in ("GET", "HEAD"):
        r = api.request(method, url, headers={"If-None-Match": quoted(data["last_modified"])})
        assert r.status_code == 304, method
        assert r.content == b""
        assert etag_value(r) == data["last_modified"]
    assert api.get(url, headers={"If-None-Match": '"1"'}).status_code == 200
    list_etag = api.get(records_url).headers["ETag"]
    assert api.get(records_url, headers={"If-None-Match": list_etag}).status_code == 304


def test_if_match_success(api, rec):
    url, data = rec
    r = api.put(url, json={"data": {"n": 2}}, headers={"If-Match": quoted(data["last_modified"])})
    assert r.status_code == 200
    new = r.json()["data"]
    assert new["last_modified"] > data["last_modified"]
    r = api.patch(url, json={"data": {"n": 3}}, headers={"If-Match": quoted(new["last_modified"])})
    assert r.status_code == 200
    r = api.delete(url, headers={"If-Match": quoted(r.json()["data"]["last_modified"])})
    assert r.status_code == 200


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_if_match_stale_412_with_existing(api, rec, method):
    url, data = rec
    body = {"data": {"n": 9}} if method != "DELETE" else None
    r = api.request(method, url, json=body, headers={"If-Match": quoted(data["last_modified"] - 1)})
    err = assert_error(r, 412, 114)
    assert err["message"] == "Resource was modified meanwhile"
    assert err["details"]["existing"] == data
    assert etag_value(r) == data["last_modified"]
    assert api.get(url).json()["data"] == data, "nothing was written"


def test_if_match_on_missing_object(api, records_url):
    # PUT: 412 without details (nothing exists to show).
    r = api.put(f"{records_url}/missing", json={"data": {}}, headers={"If-Match": '"123"'})
    err = assert_error(r, 412, 114)
    assert "details" not in err
    # GET/PATCH/DELETE on a missing object answer 404 before any precondition (observed on Kinto 26.5.0).
    for method in ("GET", "PATCH", "DELETE"):
        body = {"data": {}} if method == "PATCH" else None
        assert_error(api.request(method, f"{records_url}/missing", json=body, headers={"If-Match": '"123"'}), 404, 110)
    assert api.get(f"{records_url}/missing").status_code == 404, "the failed PUT created nothing"


def test_if_none_match_star(api, rec, records_url):
    url, data = rec
    err = assert_error(api.put(url, json={"data": {"n": 2}}, headers={"If-None-Match": "*"}), 412, 114)
    assert err["details"]["existing"] == data
    r = api.put(f"{records_url}/fresh", json={"data": {}}, headers={"If-None-Match": "*"})
    assert r.status_code == 201
    # POST with an existing id and If-None-Match: * is a conflict too.
    err = assert_error(api.post(records_url, json={"data": {"id": "r1"}}, headers={"If-None-Match": "*"}), 412, 114)
    assert err["details"]["existing"] == data
    err = assert_error(api.get(url, headers={"If-None-Match": "*"}), 412, 114)


def test_if_match_star(api, rec, records_url):
    url, _ = rec
    assert api.put(url, json={"data": {"n": 5}}, headers={"If-Match": "*"}).status_code == 200
    err = assert_error(api.put(f"{records_url}/nope", json={"data": {}}, headers={"If-Match": "*"}), 412, 114)
    assert "details" not in err


def test_if_none_match_value_ignored_on_writes(api, rec):
    url, data = rec
    r = api.put(url, json={"data": {"n": 2}}, headers={"If-None-Match": quoted(data["last_modified"])})
    assert r.status_code == 200


def test_plural_preconditions(api, rec, records_url):
    etag = api.get(records_url).headers["ETag"]
    assert api.get(records_url, headers={"If-Match": etag}).status_code == 200
    err = assert_error(api.get(records_url, headers={"If-Match": '"1"'}), 412, 114)
    assert "details" not in err


@pytest.mark.parametrize("header", ["If-Match", "If-None-Match"])
@pytest.mark.parametrize("value", ["123", 'W/"123"', '"abc"', '"1", "2"'])
def test_malformed_precondition_400(api, rec, header, value):
    url, data = rec
    err = assert_error(api.put(url, json={"data": {"n": 7}}, headers={header: value}), 400, 107)
    assert err["details"][0]["location"] == "header"
    assert api.get(url).json()["data"] == data


def test_timestamps_strictly_increase_per_collection(api, records_url):
    seen = []
    for i in range(30):
        # Mix creates, updates and deletes in a tight loop: every write gets a larger timestamp.
        if i % 3 == 2:
            seen.append(api.ok("DELETE", f"{records_url}/x{i - 1}").json()["data"]["last_modified"])
        else:
            seen.append(api.ok("PUT", f"{records_url}/x{i}", json={"data": {"i": i}}).json()["data"]["last_modified"])
    assert seen == sorted(seen) and len(set(seen)) == len(seen), seen
    assert etag_value(api.get(records_url)) == seen[-1]


def test_update_bumps_timestamp_even_without_change(api, rec):
    url, data = rec
    r = api.put(url, json={"data": {"n": 1}})
    assert r.json()["data"]["last_modified"] > data["last_modified"]


def test_client_last_modified_in_the_past_is_ignored_on_update(api, rec):
    url, data = rec
    r = api.put(url, json={"data": {"n": 2, "last_modified": data["last_modified"] - 1000}})
    assert r.json()["data"]["last_modified"] > data["last_modified"]
