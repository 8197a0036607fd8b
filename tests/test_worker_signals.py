"""Stopping the service: SIGTERM lets a write in flight finish; a worker told to quit exits at once, also twice.

A terminal's Ctrl-C sends SIGINT to gunicorn's master and to every worker, and the master then
sends each worker SIGQUIT: two quit signals microseconds apart. gunicorn's gthread worker shut
its thread pool down inside the handler of the first, holding the pool's lock, and the second
handler waited on that lock for ever, until the master killed the worker after
GRACEFUL_TIMEOUT_SECONDS with "was sent SIGKILL! Perhaps out of memory?" (server.ThreadWorker).

The hang needs the second signal to land in a window of microseconds, so the served tests below
catch it only now and then (the Ctrl-C one failed once in eight runs before the fix); the last
test puts a handler in that state on purpose, with the pool's lock held, and fails every time.
"""
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from gunicorn.config import Config
from gunicorn.workers import gthread

from service.config import Settings
from service.server import CoverageServer, ThreadWorker
from service.submissions import queries as submissions

from .gunicorn_process import Served

WORKERS = 4


def _running(pid):
    """Whether the process is there and not a zombie waiting for its parent."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def _wait_until_gone(pids, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_running(pid) for pid in pids):
        time.sleep(0.05)
    return [pid for pid in pids if _running(pid)]


@pytest.mark.slow
def test_sigterm_lets_a_write_in_flight_finish_and_answer_before_the_service_stops(database_url, make_key, db):
    """systemd, Docker and a rolling deploy stop the service with SIGTERM: nothing in flight is lost."""
    admin, office = make_key("admin"), make_key("submitter", "62")
    with Served(database_url, workers=1) as served:
        assert served.request("PUT", "/v1/provinces/62", body={"name": "Kalimantan Tengah"},
                              headers=admin).status == 201
        assert served.request("PUT", "/v1/regencies/62.09", headers=admin,
                              body={"name": "Lamandau", "kind": "kabupaten", "province_code": "62"}).status == 201
        with db, db.cursor() as cur:  # the regency's write lock, held here: the POST waits inside its transaction
            submissions.lock_regencies(db, codes=["62.09"])
            answers = []

            def submit():
                try:
                    answers.append(served.request("POST", "/v1/submissions", headers=office, timeout=30,
                                                  body={"regency_code": "62.09", "as_of": "2016-06-30",
                                                        "recorded": 90_000}))
                except OSError as exc:  # the connection lost: shown below rather than an empty list
                    answers.append(exc)

            post = threading.Thread(target=submit)
            post.start()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                cur.execute("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
                if cur.fetchone()["n"]:
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the POST never waited for the regency's lock")
            served.process.send_signal(signal.SIGTERM)
            time.sleep(1)
            assert served.process.poll() is None  # the master waits for the worker, which waits for the write
        post.join(timeout=30)  # the lock let go: the POST goes on
        assert not post.is_alive()
        served.process.wait(timeout=30)
    assert not isinstance(answers[0], OSError), answers[0]
    assert answers[0].status == 201, answers[0].body
    with db, db.cursor() as cur:
        cur.execute("SELECT id::text AS id, recorded FROM submission WHERE regency_code = '62.09'")
        assert cur.fetchall() == [{"id": answers[0].json()["id"], "recorded": 90_000}]
    assert "SIGKILL" not in served.log_text()


@pytest.mark.slow
def test_a_worker_told_twice_to_quit_exits_at_once(database_url):
    # A graceful timeout far longer than the wait below: a stuck worker is still there when asked.
    with Served(database_url, workers=WORKERS, graceful_timeout_seconds=60, worker_timeout_seconds=60) as served:
        assert served.get("/healthz").status == 200
        workers = served.worker_pids()
        assert len(workers) == WORKERS
        for pid in workers:
            os.kill(pid, signal.SIGINT)
            os.kill(pid, signal.SIGQUIT)
        assert _wait_until_gone(workers, seconds=5) == []
        deadline = time.monotonic() + 10  # reaped by the master, which puts new workers in their place
        while time.monotonic() < deadline and set(workers) & set(served.worker_pids()):
            time.sleep(0.05)
        assert not set(workers) & set(served.worker_pids())
        served.wait_until_serving()
        assert served.get("/healthz").status == 200


@pytest.mark.slow
def test_ctrl_c_stops_the_service_at_once(database_url):
    served = Served(database_url, workers=WORKERS, graceful_timeout_seconds=60, worker_timeout_seconds=60)
    with served:
        for _ in range(40):  # workers with threads in their pools, waiting for work
            assert served.get("/healthz").status == 200
        workers = served.worker_pids()
        for pid in [served.process.pid, *workers]:  # what the terminal does, to its whole foreground group
            os.kill(pid, signal.SIGINT)
        started = time.monotonic()
        served.process.wait(timeout=30)
        took = time.monotonic() - started
        assert _wait_until_gone(workers, seconds=1) == []
    assert took < 5, f"the service took {took:.1f} s to stop:\n{served.log_text()[-2000:]}"
    assert "SIGKILL" not in served.log_text()


def _quit_in_a_thread(handler, sig):
    """Run a quit handler in a thread of its own: (the thread, what it ended with)."""
    outcome = []

    def run():
        try:
            outcome.append(handler(sig, None))
        except SystemExit:
            outcome.append("exit")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=2)
    return thread, outcome


def test_the_quit_handler_never_waits_for_the_pools_lock():
    """The state both hangs came to: the pool's lock held while a quit signal's handler runs."""
    assert CoverageServer(Settings()).cfg.worker_class is ThreadWorker  # what `serve` and `demo` run
    cfg = Config()
    cfg.set("threads", 2)
    gunicorns = gthread.ThreadWorker(0, os.getppid(), [], None, 30, cfg, None)
    ours = ThreadWorker(0, os.getppid(), [], None, 30, cfg, None)
    try:
        for worker in (gunicorns, ours):
            worker.tpool = worker.get_thread_pool()
        with gunicorns.tpool._shutdown_lock, ours.tpool._shutdown_lock:  # as submit and shutdown hold it
            waiting, _ = _quit_in_a_thread(gunicorns.handle_quit, signal.SIGQUIT)
            assert waiting.is_alive()  # gunicorn's own handler waits for the lock

            quitting, outcome = _quit_in_a_thread(ours.handle_quit, signal.SIGINT)
            assert not quitting.is_alive() and outcome == ["exit"]  # this one does not wait: it exits
            again, outcome = _quit_in_a_thread(ours.handle_quit, signal.SIGQUIT)
            assert not again.is_alive() and outcome == [None]  # and a second signal changes nothing
            assert ours.alive is False
        waiting.join(timeout=5)  # the lock free, gunicorn's goes on and ends its thread
        assert not waiting.is_alive()
    finally:
        for worker in (gunicorns, ours):
            worker.tpool.shutdown()
            worker.tmp.close()
