"""Back-pressure and slow clients (issue 18): a slow-loris client is dropped after the timeout without holding a
shard slot; under a load of 3x capacity every answer is a success or a 429/503 with `Retry-After`, none waits past
the deadline, memory stays bounded, and the service recovers once the load stops.

Ours only: the reference Kinto has no header/body read timeouts, no concurrency limits and none of these settings.
"""

import socket
import threading
import time

import pytest

from api import Api, assert_error, uid
from harness import make_server

pytestmark = pytest.mark.targets("single", "split")

DEADLINE = 2
SETTINGS = {
    "request_timeout_seconds": DEADLINE,
    "header_read_timeout_seconds": 2,
    "body_read_timeout_seconds": 2,
    # One operation at a time per bucket and two per shard, with short queues: a small capacity.
    "shard_bucket_max_concurrency": 1,
    "shard_bucket_max_queue": 2,
    "shard_max_concurrency": 2,
    "shard_max_queue": 4,
    # A global ceiling the load below is well over.
    "ratelimit_global_per_second": 30,
    "ratelimit_global_burst": 30,
}


@pytest.fixture(scope="module")
def small(target):
    server = make_server(target, "admission-small", SETTINGS)
    yield server
    server.cleanup()


def raw_connection(server):
    host, port = server.origin.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    return s


def closed_within(sock, seconds):
    """Seconds until the server closes `sock` (or answers and closes it), None if still open after `seconds`."""
    start = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - start < seconds:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return time.monotonic() - start, b""
        if not data:
            return time.monotonic() - start, b""
        # An answer (408): read it to the end.
        rest = data
        while True:
            try:
                more = sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not more:
                break
            rest += more
        return time.monotonic() - start, rest
    return None


def test_a_slow_loris_is_dropped_after_the_header_timeout_and_holds_no_slot(small):
    api = Api(small, "alice")
    bid = api.create_bucket()
    sock = raw_connection(small)
    sock.sendall(f"GET /v1/buckets/{bid} HTTP/1.1\r\nHost: x\r\n".encode())
    started = time.monotonic()
    # While it trickles its head, the bucket (one operation at a time) still serves others.
    for _ in range(4):
        try:
            sock.sendall(b"X-Slow: 1\r\n")
        except OSError:
            break
        assert api.get(f"/buckets/{bid}").status_code == 200
        time.sleep(0.3)
    result = closed_within(sock, 10)
    assert result is not None, "the slow client was never dropped"
    assert time.monotonic() - started < 2 + 3
    sock.close()


def test_a_slow_body_gets_408_and_holds_no_slot(small):
    api = Api(small, "alice")
    bid = api.create_bucket()
    sock = raw_connection(small)
    auth = api.session.auth
    import base64
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    sock.sendall((f"PATCH /v1/buckets/{bid} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n"
                  "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"data\":").encode())
    # The bucket is served meanwhile: the body is read before any shard slot is taken.
    for _ in range(3):
        assert api.get(f"/buckets/{bid}").status_code == 200
        time.sleep(0.2)
    result = closed_within(sock, 10)
    sock.close()
    assert result is not None, "no answer to a body that never came"
    elapsed, answer = result
    head = answer.split(b"\r\n", 1)[0]
    assert head.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b'"errno":107' in answer


def rss_kb(server):
    total = 0
    for p in server.procs:
        with open(f"/proc/{p.popen.pid}/status") as f:
            total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return total


def test_three_times_capacity_is_refused_quickly_and_the_service_recovers(small):
    api = Api(small, "alice")
    bid = api.create_bucket()
    cid = api.create_collection(bid)
    url = f"/buckets/{bid}/collections/{cid}/records"
    # Settle the first request's allocations before measuring.
    api.get(url)
    rss_before = rss_kb(small)
    answers, lock = [], threading.Lock()
    stop = time.monotonic() + 4

    def flood():
        mine = Api(small, "alice")
        while time.monotonic() < stop:
            t0 = time.monotonic()
            r = mine.post(url, json={"data": {"v": uid()}}, timeout=DEADLINE + 5)
            with lock:
                answers.append((time.monotonic() - t0, r))

    threads = [threading.Thread(target=flood) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(answers) > 3 * 30, "the load did not reach 3x the global ceiling"
    refused = 0
    for elapsed, r in answers:
        assert elapsed < DEADLINE + 1.5, f"a request waited {elapsed:.1f}s"
        if r.status_code in (429, 503):
            refused += 1
            assert_error(r, r.status_code, 117 if r.status_code == 429 else 201)
            assert int(r.headers["Retry-After"]) >= 1
        else:
            assert r.status_code == 201, r.text
    assert refused > 0
    # Bounded memory: the flood left no queue or limiter state behind worth mentioning.
    assert rss_kb(small) - rss_before < 100_000
    # Recovery: once the load stops and the ceiling refills, requests pass again.
    time.sleep(2)
    assert api.get(url).status_code == 200
    r = api.post(url, json={"data": {"v": 1}})
    assert r.status_code == 201, r.text


def test_a_pressed_shard_asks_for_backoff(target):
    """A shard with waiters puts a pressure hint on its replies, which the gateway turns into `Backoff`."""
    server = make_server(target, "admission-pressed", {
        "shard_max_concurrency": 1, "shard_max_queue": 1000, "shard_pressure_backoff_seconds": 7})
    try:
        api = Api(server, "alice")
        bid = api.create_bucket()
        cid = api.create_collection(bid)
        url = f"/buckets/{bid}/collections/{cid}/records"
        assert "Backoff" not in api.get(url).headers
        backoffs, statuses, lock = [], set(), threading.Lock()
        stop = time.monotonic() + 3

        def load():
            mine = Api(server, "alice")
            while time.monotonic() < stop:
                r = mine.post(url, json={"data": {"v": 1}})
                with lock:
                    statuses.add(r.status_code)
                    backoffs.append(r.headers.get("Backoff"))

        threads = [threading.Thread(target=load) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == {201}, statuses
        assert "7" in backoffs, set(backoffs)
        assert set(backoffs) <= {None, "7"}
        # Idle again: no hint.
        assert "Backoff" not in api.get(url).headers
    finally:
        server.cleanup()
