"""Concurrent writers against a served instance (gunicorn, several workers) while a follower reads the feed."""
import datetime as dt
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import count_rows
from .submissions_world import LAMANDAU, MURUNG_RAYA, PALANGKA_RAYA, SERUYAN, load_world

WRITERS = 6
PER_WRITER = 30


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(db, database_url, tmp_path):
    """`ktpel-coverage serve` on a free loopback port, 3 workers of 4 threads; stopped afterwards."""
    load_world(db)
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "HOST": "127.0.0.1", "PORT": str(port),
           "WEB_CONCURRENCY": "3", "THREADS": "4", "LOG_LEVEL": "warning"}
    log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen([sys.executable, "-c", "from service.cli import main; main()", "serve"],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    base = ("127.0.0.1", port)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                call(base, "GET", "/healthz", {})
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def call(base, method, path, headers, body=None):
    """One request on a connection of its own; (status, parsed JSON)."""
    connection = http.client.HTTPConnection(*base, timeout=30)
    try:
        data = None if body is None else json.dumps(body)
        connection.request(method, path, body=data, headers={**headers, "Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_follower_sees_every_change_once_while_writers_run(served, make_key):
    office = make_key("submitter", "62")
    reader = make_key("reader")
    codes = [LAMANDAU, PALANGKA_RAYA, SERUYAN, MURUNG_RAYA]
    created, retracted, lock = [], [], threading.Lock()
    writers_done = threading.Event()

    def write(writer):
        for i in range(PER_WRITER):
            day = dt.date(2016, 1, 1) + dt.timedelta(days=writer * PER_WRITER + i)
            body = {"regency_code": codes[i % len(codes)], "as_of": day.isoformat(), "recorded": 1000 + i}
            status, answer = call(served, "POST", "/v1/submissions", office, body)
            assert status == 201, answer
            with lock:
                created.append(answer["id"])
            if i % 7 == 3:
                status, _ = call(served, "POST", f"/v1/submissions/{answer['id']}/retract", office,
                                 {"reason": "test"})
                assert status == 200
                with lock:
                    retracted.append(answer["id"])

    followed = []

    def follow():
        cursor = None
        while True:
            done = writers_done.is_set()  # read before the page: a page after the writers ended is complete
            query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
            status, page = call(served, "GET", "/v1/submissions" + query, reader)
            assert status == 200
            followed.extend((item["id"], item["change"]) for item in page["items"])
            cursor = page["next_cursor"]
            if done and not page["has_more"]:
                return

    with ThreadPoolExecutor(WRITERS + 1) as pool:
        follower = pool.submit(follow)
        writers = [pool.submit(write, w) for w in range(WRITERS)]
        for w in writers:
            w.result(timeout=120)
        writers_done.set()
        follower.result(timeout=120)

    assert len(created) == WRITERS * PER_WRITER
    assert len(followed) == len(set(followed)), "a change was seen twice"
    assert sorted(followed) == sorted([(i, "created") for i in created] + [(i, "retracted") for i in retracted])
    positions = {change: n for n, change in enumerate(followed)}
    assert all(positions[(i, "created")] < positions[(i, "retracted")] for i in retracted)


def test_identical_submissions_racing_store_one(served, make_key, db):
    office = make_key("submitter", "62")
    body = {"regency_code": LAMANDAU, "as_of": "2016-06-30", "recorded": 62_150}
    start = threading.Barrier(12)

    def send(_):
        start.wait()
        return call(served, "POST", "/v1/submissions", office, body)

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(send, range(12)))

    assert sorted(status for status, _ in answers) == [200] * 11 + [201]
    assert len({answer["id"] for _, answer in answers}) == 1
    assert count_rows(db, "submission") == 1


def test_identical_batches_racing_store_each_item_once(served, make_key, db):
    office = make_key("submitter", "62")
    items = [{"regency_code": code, "as_of": f"2016-06-{day:02d}", "recorded": day}
             for code in (LAMANDAU, PALANGKA_RAYA, SERUYAN) for day in range(1, 29)]
    start = threading.Barrier(6)

    def send(_):
        start.wait()
        return call(served, "POST", "/v1/submissions/batch", office, {"items": items})

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(send, range(6)))

    assert sorted(answer["summary"]["created"] for _, answer in answers) == [0] * 5 + [len(items)]
    assert count_rows(db, "submission") == len(items)
