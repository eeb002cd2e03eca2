"""`POST /__flush__` (kinto-api.md §10.5): only when enabled, wipes every shard."""

from api import Api, assert_error


def test_flush_disabled_is_404(api):
    assert_error(api.post("/__flush__"), 404, 111)
    bid = api.create_bucket()
    assert api.get(f"/buckets/{bid}").status_code == 200


def test_flush_wipes_everything(plugged):
    alice = Api(plugged, "alice")
    buckets = [alice.create_bucket() for _ in range(6)]  # spread over every shard
    r = Api(plugged).post("/__flush__")
    assert r.status_code == 202 and r.json() == {}
    assert alice.get("/buckets").json()["data"] == []
    for bid in buckets:
        assert alice.get(f"/buckets/{bid}").status_code == 403
    assert_error(Api(plugged).get("/__flush__"), 405, 115)
