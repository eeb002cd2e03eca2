"""POST /batch (kinto-api.md §7).

Kinto runs a batch in one transaction but commits it despite 4xx sub-responses; kinto-rs documents each
sub-request as atomic on its own. Both agree on what is tested here: a 4xx sub-request does not undo the others.
"""

import base64

import pytest

from api import PASSWORD, assert_error


def batch(api, requests, defaults=None, status=200):
    body = {"requests": requests}
    if defaults is not None:
        body["defaults"] = defaults
    r = api.post("/batch", json=body)
    assert r.status_code == status, r.text
    return r.json()["responses"] if status == 200 else r.json()


def test_defaults_deep_merge(api, records_url):
    defaults = {"method": "PUT", "headers": {"If-None-Match": "*"}, "body": {"data": {"shared": 1}}}
    out = batch(api, [{"path": f"{records_url}/a", "body": {"data": {"own": 2}}},
                      {"path": f"{records_url}/b", "body": {"data": {"shared": 3}}},
                      {"path": f"{records_url}/a"}], defaults)
    assert [o["status"] for o in out] == [201, 201, 412]
    assert out[0]["body"]["data"]["own"] == 2 and out[0]["body"]["data"]["shared"] == 1
    assert out[1]["body"]["data"]["shared"] == 3, "request values win over defaults"
    # The third one inherited If-None-Match: * from the defaults.
    assert out[2]["body"]["details"]["existing"]["id"] == "a"


def test_sub_response_shape(api, records_url):
    out = batch(api, [{"method": "PUT", "path": f"{records_url}/a?x=1", "body": {"data": {"n": 1}}},
                      {"method": "GET", "path": f"{records_url}?_sort=id"}])
    for o in out:
        assert set(o) == {"status", "path", "headers", "body"}
    put, get = out
    # The executed path: /v1 prefix, no querystring.
    assert put["path"] == f"/v1{records_url}/a"
    assert put["status"] == 201
    assert put["headers"]["ETag"] == f'"{put["body"]["data"]["last_modified"]}"'
    assert put["headers"]["Content-Type"].startswith("application/json")
    assert get["status"] == 200 and get["path"] == f"/v1{records_url}"
    assert [x["id"] for x in get["body"]["data"]] == ["a"]


def test_mixed_statuses(api, bob, records_url):
    bob_auth = "Basic " + base64.b64encode(f"bob:{PASSWORD}".encode()).decode()
    out = batch(api, [
        {"method": "POST", "path": records_url, "body": {"data": {"n": 1}}},
        {"method": "GET", "path": "/nope"},
        {"method": "DELETE", "path": f"/v1{records_url}/missing"},  # an explicit /v1 prefix is fine too
        {"method": "PUT", "path": f"{records_url}/bobs", "headers": {"Authorization": bob_auth}},
        {"method": "PUT", "path": f"{records_url}/c", "body": {"data": {"id": "other"}}},
        {"method": "GET", "path": "/"},
    ])
    assert [o["status"] for o in out] == [201, 404, 404, 403, 400, 200]
    assert out[1]["body"]["errno"] == 111
    assert out[2]["body"]["errno"] == 110
    assert out[3]["body"]["errno"] == 121
    assert out[4]["body"]["errno"] == 107
    # Sub-requests inherit the batch's Authorization unless they set their own.
    assert out[5]["body"]["user"]["id"] == api.principal


def test_anonymous_batch_sub_requests_get_401(anon, records_url):
    out = batch(anon, [{"method": "GET", "path": records_url}, {"method": "GET", "path": "/"}])
    assert out[0]["status"] == 401 and out[0]["body"]["errno"] == 104
    assert out[1]["status"] == 200 and "user" not in out[1]["body"]


def test_4xx_does_not_roll_back_the_others(api, bucket, records_url):
    out = batch(api, [
        {"method": "PUT", "path": f"{records_url}/a", "body": {"data": {}}},
        {"method": "PUT", "path": f"/buckets/{bucket}/collections/missing/records/x", "body": {"data": {}}},
        {"method": "PUT", "path": f"{records_url}/b", "body": {"data": {}}, "headers": {"If-Match": '"1"'}},
        {"method": "PUT", "path": f"{records_url}/c", "body": {"data": {}}},
    ])
    assert [o["status"] for o in out] == [201, 404, 412, 201]
    assert sorted(x["id"] for x in api.get(records_url).json()["data"]) == ["a", "c"]


def test_batch_writes_are_visible_and_ordered(api, records_url):
    out = batch(api, [{"method": "PUT", "path": f"{records_url}/r{i}", "body": {"data": {"i": i}}} for i in range(10)])
    stamps = [o["body"]["data"]["last_modified"] for o in out]
    assert stamps == sorted(stamps) and len(set(stamps)) == 10
    assert len(api.get(records_url).json()["data"]) == 10


def test_limit_25(api, records_url):
    ok = batch(api, [{"method": "GET", "path": "/"}] * 25)
    assert len(ok) == 25
    err = assert_error(api.post("/batch", json={"requests": [{"path": "/"}] * 26}), 400, 107)
    assert "Number of requests is limited to 25" in err["message"]


def test_empty_batch(api):
    assert batch(api, []) == []


def test_recursive_batch_400(api):
    err = assert_error(api.post("/batch", json={"requests": [{"method": "POST", "path": "/batch"}]}), 400, 107)
    assert "Recursive call on /batch endpoint is forbidden." in err["message"]


@pytest.mark.parametrize("body", [
    {},
    {"requests": "nope"},
    {"requests": [], "extra": 1},
    {"requests": [{"path": "/", "extra": 1}]},
    {"requests": [{"method": "GET"}]},
    {"requests": [{"path": "no-slash"}]},
    {"requests": [{"path": "/", "method": "OPTIONS"}]},
    {"requests": [{"path": "/", "headers": {"a": 1}}]},
    {"requests": [{"path": "/", "method": "PUT", "body": [1]}]},
])
def test_invalid_envelope_400(api, body):
    assert_error(api.post("/batch", json=body), 400, 107)


def test_batch_needs_json(api):
    assert_error(api.post("/batch", data="requests", headers={"Content-Type": "text/plain"}), 415, 107)
