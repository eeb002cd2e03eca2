"""kinto-wizard (PyPI) against the server: `dump --full` of a populated server to YAML, then `load` of that
file into an empty server, reproduce the same buckets, collections, groups, records and permissions (compared
through the API). Runs on every target; on `ref` it proves the test itself.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from api import Api, user_id
from harness import OUTPUT, make_server

WIZARD = Path(sys.executable).parent / "kinto-wizard"


@pytest.fixture(scope="module")
def servers(target):
    """(a source server, an empty destination server): their own, so no other test's buckets get dumped."""
    made = []
    try:
        for name in ("wizard-src", "wizard-dst"):
            made.append(make_server(target, name, {}))
        yield made
    finally:
        for s in made:
            s.cleanup()


def wizard(*args):
    out = subprocess.run([str(WIZARD), *args], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, f"kinto-wizard {args[0]} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    return out.stdout


def populate(api):
    bob, everyone = user_id("bob"), "system.Everyone"
    api.ok("PUT", "/buckets/main", json={"data": {"title": "Main"}, "permissions": {"read": [everyone]}})
    api.ok("PUT", "/buckets/main/groups/editors",
           json={"data": {"members": [bob, user_id("carl")], "label": "eds"}})
    api.ok("PUT", "/buckets/main/collections/articles",
           json={"data": {"sort": "-title"}, "permissions": {"write": ["/buckets/main/groups/editors"]}})
    for i in range(3):
        body = {"data": {"title": f"t{i}", "tags": ["x", i]}, **({"permissions": {"read": [bob]}} if i else {})}
        api.ok("PUT", f"/buckets/main/collections/articles/records/a{i}", json=body)
    api.ok("PUT", "/buckets/main/collections/empty", json={"permissions": {"record:create": [bob]}})
    api.ok("PUT", "/buckets/other", json={"permissions": {"collection:create": [bob], "group:create": [bob]}})
    api.ok("PUT", "/buckets/other/groups/nobody", json={"data": {"members": []}})


def snapshot(api):
    """Every bucket, collection, group and record alice sees: data (without timestamps) and permissions.

    Records' permissions are left out: kinto-wizard dumps records from their collection's list, which carries
    none (`permissions: {}` in the YAML), so loaded records only have their writer's.
    """
    def strip(obj, permissions=True):
        return {"data": {k: v for k, v in obj["data"].items() if k != "last_modified"},
                "permissions": {k: sorted(v) for k, v in obj.get("permissions", {}).items()} if permissions else None}

    out = {}
    for b in api.ok("GET", "/buckets").json()["data"]:
        bid = b["id"]
        out[bid] = strip(api.ok("GET", f"/buckets/{bid}").json())
        for kind in ("groups", "collections"):
            for child in api.ok("GET", f"/buckets/{bid}/{kind}").json()["data"]:
                path = f"/buckets/{bid}/{kind}/{child['id']}"
                out[path] = strip(api.ok("GET", path).json())
                if kind == "collections":
                    for rec in api.ok("GET", path + "/records").json()["data"]:
                        record = api.ok("GET", f"{path}/records/{rec['id']}").json()
                        out[f"{path}/records/{rec['id']}"] = strip(record, permissions=False)
    return out


def test_dump_then_load_reproduces_the_server(servers, target):
    src, dst = (Api(s, "alice") for s in servers)
    populate(src)
    auth = "alice:s3cret"
    dumped = wizard("dump", "--full", "-q", "--server", src.root, "--auth", auth)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"wizard-{target}.yaml"
    path.write_text(dumped)
    tree = yaml.safe_load(dumped)["buckets"]
    assert set(tree) == {"main", "other"}
    assert set(tree["main"]["collections"]["articles"]["records"]) == {"a0", "a1", "a2"}
    assert tree["main"]["groups"]["editors"]["data"]["members"] == [user_id("bob"), user_id("carl")]

    assert dst.ok("GET", "/buckets").json()["data"] == []
    wizard("load", "-q", "--server", dst.root, "--auth", auth, str(path))  # 5.0's load takes everything
    expected = snapshot(src)
    assert len(expected) == 9
    assert snapshot(dst) == expected
    a1 = dst.ok("GET", "/buckets/main/collections/articles/records/a1").json()
    assert a1["permissions"] == {"write": [user_id("alice")]}
    # Loading the same file again changes nothing.
    wizard("load", "-q", "--server", dst.root, "--auth", auth, str(path))
    assert snapshot(dst) == expected
