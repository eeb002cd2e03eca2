"""`GET /__api__` (issue 3): an OpenAPI 2.0 document, as Kinto serves, that matches what the server answers."""

import re

import pytest

from openapi_spec_validator import validate

from api import Api

# Ours only: Kinto 26.5's own document fails the validator (its snapshot path
# `…/{collection_id}@{timestamp}` is not a valid Swagger template).
pytestmark = pytest.mark.targets("single", "split")


def test_valid_swagger_2(plugged):
    doc = Api(plugged).get("/__api__").json()
    validate(doc)
    assert doc["swagger"] == "2.0" and doc["basePath"] == "/v1"
    ops = {(path, m) for path, item in doc["paths"].items() for m in item}
    for expected in [("/buckets", "get"), ("/buckets/{bucket_id}/collections/{collection_id}/records/{id}", "patch"),
                     ("/accounts", "post"), ("/buckets/{bucket_id}/history", "get"), ("/batch", "post")]:
        assert expected in ops
    get_records = doc["paths"]["/buckets/{bucket_id}/collections/{collection_id}/records"]["get"]
    assert get_records["operationId"] == "get_records"
    assert {p["name"] for p in get_records["parameters"]} >= {"bucket_id", "collection_id", "_since", "_limit"}


def test_documents_only_what_is_served(plugged, api):
    """Every documented operation is routed (no 404 for an unknown URL, no 405), and a core server documents no
    plugin endpoint."""
    doc = Api(plugged).get("/__api__").json()
    anon = Api(plugged)
    for path, item in doc["paths"].items():
        # `collection@timestamp` is the snapshot's one parameter (see gateway/src/http/openapi.rs).
        url = re.sub(r"\{[^}]+\}", "x", path.replace("{collection_at_timestamp}", "x@1"))
        for method in (m for m in item if m != "parameters"):
            r = anon.request(method.upper(), url, json={} if method in ("post", "put", "patch") else None)
            assert r.status_code != 405, (method, path)
            if r.status_code == 404 and r.headers.get("Content-Type", "").startswith("application/json"):
                assert r.json().get("message") != "The resource you are looking for could not be found.", (method, path)
    core = api.get("/__api__").json()["paths"]
    assert "/buckets/{bucket_id}/collections/{collection_id}/records" in core
    assert not any(p.startswith(("/accounts", "/__flush__", "/permissions")) or p.endswith("/history") for p in core)
