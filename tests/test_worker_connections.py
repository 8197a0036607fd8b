"""New connections go to the workers holding fewer (server.ThreadWorker.accept).

Every gunicorn worker waits on the one listening socket, and the first awake takes what is
there: four keep-alive connections opened together often all went to one worker, which served
them on one core while three workers idled. The first test runs the service and opens
connections together; the others drive one worker's accept by hand, on a real listening socket.
"""
import os
import selectors
import socket
import time

import psutil
import pytest
from gunicorn.config import Config

from service.server import ThreadWorker

from .gunicorn_process import Served

WORKERS = 4
BURSTS = 8


def _connections_held(served):
    """How many open client connections each worker holds, most first."""
    held = []
    for pid in served.worker_pids():
        connections = psutil.Process(pid).net_connections("tcp")
        held.append(sum(1 for c in connections if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == served.port))
    return sorted(held, reverse=True)


def _healthz(sock):
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
        chunk = sock.recv(4096)
        assert chunk, f"the connection closed after {answer!r}"
        answer += chunk
    return answer.split(b" ", 2)[1]


@pytest.mark.slow
def test_connections_opened_together_are_spread_over_the_workers(database_url):
    with Served(database_url, workers=WORKERS) as served:
        spreads = []
        for _ in range(BURSTS):
            clients = [socket.create_connection(("127.0.0.1", served.port), timeout=10) for _ in range(WORKERS)]
            try:
                assert [_healthz(client) for client in clients] == [b"200"] * WORKERS
                spreads.append(_connections_held(served))
            finally:
                for client in clients:
                    client.close()
            deadline = time.monotonic() + 10
            while any(_connections_held(served)) and time.monotonic() < deadline:
                time.sleep(0.05)
    # gunicorn's own worker put one on each worker in none of 24 such bursts (two to four on
    # one in each). Ours did in 7 or 8 of 8, beside two processes spinning on the CPU too: the
    # first burst after a start may find a worker slow to wake.
    assert sum(spread == [1] * WORKERS for spread in spreads) >= 5, spreads


@pytest.fixture
def listener():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock
    sock.close()


@pytest.fixture
def worker(listener):
    cfg = Config()
    cfg.set("workers", WORKERS)
    cfg.set("threads", 2)
    worker = ThreadWorker(0, os.getppid(), [listener], None, 30, cfg, None)
    worker.poller = selectors.DefaultSelector()
    worker.taken = []
    worker.enqueue_req = worker.taken.append  # the connection as gunicorn hands it to the thread pool
    worker.set_accept_enabled(True)
    yield worker
    for conn in worker.taken:
        conn.sock.close()
    worker.poller.close()


def _turn(worker, timeout=1.0):
    """One turn of gunicorn's worker loop: accepting on again if it may, then the events."""
    worker.set_accept_enabled(worker.nr_conns < worker.worker_connections)
    worker.wait_for_and_dispatch_events(timeout)


def test_a_worker_holding_no_connection_takes_a_new_one_at_once(worker, listener):
    with socket.create_connection(listener.getsockname()):
        _turn(worker)

        assert len(worker.taken) == 1 and worker.nr_conns == 1


def test_a_worker_holding_a_connection_leaves_a_new_one_to_others_for_a_while(worker, listener):
    worker.nr_conns = 1  # serving one already
    with socket.create_connection(listener.getsockname()):
        _turn(worker)

        assert worker.taken == [] and not worker._accepting
        taken_by_another, _ = listener.accept()  # a worker holding fewer, woken by the same connection
        taken_by_another.close()


def test_a_connection_no_other_worker_took_is_taken_when_the_wait_is_over(worker, listener):
    worker.nr_conns = 3
    with socket.create_connection(listener.getsockname()):
        started = time.monotonic()
        while not worker.taken and time.monotonic() - started < 1:
            _turn(worker)
        waited = time.monotonic() - started

        assert len(worker.taken) == 1 and worker.nr_conns == 4
        assert 3 * ThreadWorker.ACCEPT_WAIT_PER_CONNECTION <= waited < 0.5


def test_the_only_worker_takes_every_connection_at_once(worker, listener):
    worker.cfg.set("workers", 1)
    worker.nr_conns = 3
    with socket.create_connection(listener.getsockname()):
        _turn(worker)

        assert len(worker.taken) == 1
