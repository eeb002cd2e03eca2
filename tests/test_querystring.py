"""Filters, value typing, sorting, field selection and bad querystrings (kinto-api.md §4.1–4.5).

One read-only dataset per target (module scope) keeps this module fast. Results are compared as ordered lists
where the order is part of the contract (the default order is -last_modified, i.e. r5 first).
"""

import pytest

from api import Api, assert_error

DATA = {
    "r1": {"name": "Alice", "age": 30, "code": 30, "tags": ["x", "y"], "addr": {"city": "paris", "zip": "75001"},
           "flag": True, "v": None, "grp": "a"},
    "r2": {"name": "bob", "age": 25, "code": 25, "tags": ["y"], "addr": {"city": "lyon"}, "flag": False, "grp": "b"},
    "r3": {"name": "Carol", "age": 28, "code": "30", "tags": [], "addr": {"city": "nice"}, "grp": "a"},
    "r4": {"name": "dave", "age": 40, "code": 40, "grp": "b"},
    "r5": {"name": "Eve", "age": 35.5, "code": 35, "tags": ["z", "x"], "v": 1, "grp": "a"},
}


@pytest.fixture(scope="module")
def records(pool, target):
    api = Api(pool.get(target), "alice")
    bid = api.create_bucket()
    cid = api.create_collection(bid)
    url = f"/buckets/{bid}/collections/{cid}/records"
    for rid, data in DATA.items():  # created in order: r1 is the oldest
        api.ok("PUT", f"{url}/{rid}", json={"data": data})
    return api, url


def ids(records, query):
    api, url = records
    r = api.get(f"{url}?{query}")
    assert r.status_code == 200, f"{query}: {r.status_code} {r.text[:300]}"
    return [o["id"] for o in r.json()["data"]]


@pytest.mark.parametrize("query, expected", [
    ("", ["r5", "r4", "r3", "r2", "r1"]),  # default order: -last_modified
    ("grp=a", ["r5", "r3", "r1"]),
    ("eq_grp=b", ["r4", "r2"]),
    ("not_grp=a", ["r4", "r2"]),
    ("min_age=30", ["r5", "r4", "r1"]),
    ("max_age=30", ["r3", "r2", "r1"]),
    ("min_age=28&max_age=35.5", ["r5", "r3", "r1"]),
    ("lt_age=28", ["r2"]),
    ("gt_age=35.5", ["r4"]),
    ("in_age=25,40", ["r4", "r2"]),
    ("in_id=r1,r3", ["r3", "r1"]),
    ("exclude_id=r1,r3", ["r5", "r4", "r2"]),
    ("exclude_grp=a", ["r4", "r2"]),
    ("exclude_name=Alice,bob", ["r5", "r4", "r3"]),
    ("like_name=a", ["r4", "r3", "r1"]),  # no `*`: substring, case-insensitive
    ("like_name=a*", ["r1"]),
    ("like_name=*e", ["r5", "r4", "r1"]),
    ("has_tags=true", ["r5", "r3", "r2", "r1"]),
    ("has_tags=false", ["r4"]),
    ("has_flag=0", ["r5", "r4", "r3"]),
    ("has_v=1", ["r5", "r1"]),  # a JSON null counts as present
    ("contains_tags=x", ["r5", "r1"]),
    ('contains_tags=["x","y"]', ["r1"]),
    ('contains_any_tags=["z","y"]', ["r5", "r2", "r1"]),
    ("contains_any_tags=x,z", []),  # no comma splitting: looks for the string "x,z"
    ("name=Alice&age=30", ["r1"]),
    ("id=r2", ["r2"]),
    ("_foo=1&_expected=2", ["r5", "r4", "r3", "r2", "r1"]),  # unknown _params are ignored
])
def test_filters(records, query, expected):
    assert ids(records, query) == expected


@pytest.mark.parametrize("query, expected", [
    ("addr.city=paris", ["r1"]),
    ("has_addr.zip=true", ["r1"]),
    ("in_addr.city=lyon,nice", ["r3", "r2"]),
    ("lt_addr.city=m", ["r2"]),  # (gt_ would hit the memory backend's "missing is greatest" quirk)
])
def test_dotted_subfields(records, query, expected):
    assert ids(records, query) == expected


@pytest.mark.parametrize("query, expected", [
    ("code=30", ["r1"]),  # values are parsed as JSON: 30 is a number...
    ('code="30"', ["r3"]),  # ... and "30" a string
    ('in_code=30,"30"', ["r3", "r1"]),
    ("age=30.0", ["r1"]),  # JSON numbers compare by value
    ("flag=true", ["r1"]),
    ("flag=false", ["r2"]),
    ("flag=1", []),
    ("v=null", ["r1"]),  # JSON null, not "missing"
    ("tags=[]", ["r3"]),
    ('addr={"city":"lyon"}', ["r2"]),
    ("name=Alice", ["r1"]),  # not JSON: a plain string
])
def test_json_value_typing(records, query, expected):
    assert ids(records, query) == expected


@pytest.mark.parametrize("query, expected", [
    ("_sort=age", ["r2", "r3", "r1", "r5", "r4"]),
    ("_sort=+age", ["r2", "r3", "r1", "r5", "r4"]),
    ("_sort=-age", ["r4", "r5", "r1", "r3", "r2"]),
    ("_sort=grp,-age", ["r5", "r1", "r3", "r4", "r2"]),
    ("_sort=-grp,age", ["r2", "r4", "r3", "r1", "r5"]),
    ("_sort=addr.city", ["r2", "r3", "r1", "r5", "r4"]),  # missing values last, then -last_modified
    ("_sort=-addr.city", ["r5", "r4", "r1", "r3", "r2"]),  # missing values first when descending
    ("_sort=flag", ["r2", "r1", "r5", "r4", "r3"]),  # false < true
    ("_sort=last_modified", ["r1", "r2", "r3", "r4", "r5"]),
    ("_sort=id", ["r1", "r2", "r3", "r4", "r5"]),
    ("_sort=unknown", ["r5", "r4", "r3", "r2", "r1"]),
    ("_sort=age&grp=a", ["r3", "r1", "r5"]),
])
def test_sort(records, query, expected):
    assert ids(records, query) == expected


def test_fields_on_list(records):
    api, url = records
    data = api.get(f"{url}?_fields=name,addr.city&in_id=r1,r4").json()["data"]
    for o in data:
        o.pop("last_modified")
    assert data == [{"id": "r4", "name": "dave"}, {"id": "r1", "name": "Alice", "addr": {"city": "paris"}}]


def test_fields_on_object(records):
    api, url = records
    r = api.get(f"{url}/r1?_fields=age,tags")
    assert r.status_code == 200
    assert set(r.json()["data"]) == {"id", "last_modified", "age", "tags"}


def test_total_objects_on_head(records):
    api, url = records
    r = api.head(f"{url}?grp=a")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["Total-Objects"] == "3"
    assert api.head(url).headers["Total-Objects"] == "5"


@pytest.mark.parametrize("query", [
    "_limit=-1", "_limit=x", "_since=abc", "_before=abc", "_since=1&_since=2", "in_id=10,a",
    "like_age=3", "contains_id=x", "gt_last_modified=abc", "_token=garbage",
])
def test_bad_values_400(records, query):
    api, url = records
    assert_error(api.get(f"{url}?{query}"), 400, 107)


def test_far_future_since_400(records):
    api, url = records
    assert_error(api.get(f"{url}?_since=99999999999999"), 400, 107)
