"""Differential tests for Kinto's views at the edges (issue 23): a collection's `cache_expires`.

Each scenario runs on the reference Kinto and on the target; the transcripts are compared with
test_differential's normaliser, and what it leaves out (400 messages, caching headers) is compared explicitly.
"""

from email.utils import parsedate_to_datetime

from api import uid
from test_differential import Recorder, diff, normalise


def cache_scenario(call, bid):
    coll = f"/buckets/{bid}/collections"
    call("PUT", f"/buckets/{bid}", json={"permissions": {"read": ["system.Everyone"]}})
    # Validation and coercion: colander's Int, i.e. Python's int().
    values = [60, "60", " -3 ", "+4", "1_000", 1.5, 1e3, True, False, None, "", [], {},
              "abc", "1.5", "0x10", "1__0", [1], {"a": 1}, ["x", True, None]]
    for i, value in enumerate(values):
        call("PUT", f"{coll}/v{i}", json={"data": {"cache_expires": value}})
    call("POST", coll, json={"data": {"id": "posted", "cache_expires": "7"}})
    call("POST", coll, json={"data": {"cache_expires": "x"}})
    # PATCH validates the merged object: the error names the field without `data.`.
    call("PUT", f"{coll}/p", json={"data": {"cache_expires": 7}})
    for value in ("5", "abc", None, 9):
        call("PATCH", f"{coll}/p", json={"data": {"cache_expires": value}})
    merge = {"Content-Type": "application/merge-patch+json"}
    call("PATCH", f"{coll}/p", data='{"data": {"cache_expires": "4"}}', headers=merge)
    call("PATCH", f"{coll}/p", data='{"data": {"cache_expires": null}}', headers=merge)
    jpatch = {"Content-Type": "application/json-patch+json"}
    for value in ('"8"', '"x"'):
        call("PATCH", f"{coll}/p", data=f'[{{"op": "add", "path": "/data/cache_expires", "value": {value}}}]',
             headers=jpatch)
    call("GET", f"{coll}/p")
    # Record reads: anonymous callers get the collection's caching, others no-cache.
    for value in (60, 0, -5, None):
        cid = f"e{value}".replace("-", "m")
        data = {} if value is None else {"cache_expires": value}
        call("PUT", f"{coll}/{cid}", json={"data": data})
        call("PUT", f"{coll}/{cid}/records/r1", json={"data": {"n": 1}})
        for path in ("records", "records/r1", "records/missing"):
            call("GET", f"{coll}/{cid}/{path}", user="anon")
            call("HEAD", f"{coll}/{cid}/{path}", user="anon")
        call("GET", f"{coll}/{cid}/records", user="anon", params={"_limit": 1})
        call("GET", f"{coll}/{cid}/records", user="alice")
        call("GET", f"{coll}/{cid}/records/r1", user="alice")
        call("GET", f"{coll}/{cid}", user="anon")


def caching(entry):
    """What the normaliser leaves out: 400 messages and details, caching headers (Expires as seconds from Date)."""
    h, body = {k.title(): v for k, v in entry["headers"].items()}, entry["body"]
    out = {"request": f"{entry['user']} {entry['method']} {entry['path']}",
           "cache-control": h.get("Cache-Control"), "pragma": h.get("Pragma")}
    if entry["status"] == 400 and isinstance(body, dict):
        out["message"], out["details"] = body.get("message"), body.get("details")
    if "Expires" in h:
        delta = parsedate_to_datetime(h["Expires"]) - parsedate_to_datetime(h["Date"])
        out["expires"] = delta.total_seconds()
    return out


def close(expected, actual):
    """Equal, but Expires may fall one second apart (two clocks read at different instants)."""
    if expected.keys() != actual.keys():
        return False
    return all(abs(e - actual[k]) <= 1 if k == "expires" else e == actual[k] for k, e in expected.items())


def test_cache_expires_matches_reference(pool, target):
    reference = pool.get("ref")
    other = pool.get("ref", "twin") if target == "ref" else pool.get(target)
    bid = uid("views")
    ref_rec, our_rec = Recorder(reference), Recorder(other)
    cache_scenario(ref_rec, bid)
    cache_scenario(our_rec, bid)
    expected, actual = normalise(ref_rec), normalise(our_rec)
    assert expected == actual, "\n" + diff(expected, actual)
    wrong = [(e, a) for e, a in zip(map(caching, ref_rec.entries), map(caching, our_rec.entries)) if not close(e, a)]
    assert not wrong, "\n".join(f"ref  {e}\nours {a}" for e, a in wrong[:10])
