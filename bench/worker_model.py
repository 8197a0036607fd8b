"""Worker model under slow clients: gunicorn sync against gthread, same machine, same run.

    .venv/bin/python -m bench.worker_model                  # slow bodies; embedded PostgreSQL, or DATABASE_URL
    .venv/bin/python -m bench.worker_model --slow headers   # slow headers instead

Slow clients send an admin PUT whose body dribbles in one byte every 0.2 s (a regency office
uploading on a bad link, or an attacker): the view reads the body, so a worker thread waits for
it. With --slow headers they send a request whose headers dribble in the same way: gunicorn 27
reads a request's headers in the worker thread (gthread) or process (sync) that took the
connection, so they hold it as a slow body does. Meanwhile a fast client times GET /readyz (one
database round trip). Printed: the median and 90th percentile of the fast requests, how many did
not answer within the timeout, and the median as a ratio of the baseline (no slow clients) of
the same worker model.
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

WORKERS = 2
THREADS = 4
FAST_REQUESTS = 40
FAST_TIMEOUT = 2.0
SLOW_CLIENT_COUNTS = (0, 6, 16)
CLI = Path(sys.executable).parent / "ktpel-coverage"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url():
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"], None
    from service import embedded

    server, url = embedded.start(Path(tempfile.gettempdir()) / "ktpel-bench-worker-model")
    return url, server


def migrate(url):
    subprocess.run([str(CLI), "migrate"], env=dict(os.environ, DATABASE_URL=url), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def serve(url, worker_class):
    port = free_port()
    # One thread for sync: gunicorn runs a sync worker with more than one thread as gthread.
    threads = 1 if worker_class == "sync" else THREADS
    env = dict(os.environ, DATABASE_URL=url, HOST="127.0.0.1", PORT=str(port), WEB_CONCURRENCY=str(WORKERS),
               THREADS=str(threads), WORKER_CLASS=worker_class, LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL","WARNING"))
    process = subprocess.Popen([str(CLI), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=1):  # noqa: S310 - our own http URL
                return process, port
        except (OSError, urllib.error.URLError):
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"{worker_class}: gunicorn did not start")


def admin_token(url):
    return subprocess.run([str(CLI), "keys", "create", "--name", "worker model bench", "--role", "admin"],
                          env=dict(os.environ, DATABASE_URL=url), check=True, capture_output=True,
                          text=True).stdout.strip()


def slow_client(port, token, stop, part):
    """PUT a body (or send headers) one byte every 0.2 s until told to stop."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            if part == "headers":
                conn.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            else:
                conn.sendall(f"PUT /v1/national-targets/2016-01-01 HTTP/1.1\r\nHost: x\r\n"
                             f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                             "Content-Length: 100000\r\n\r\n".encode())
            while not stop.is_set():
                conn.sendall(b"a" if part == "headers" else b" ")
                stop.wait(0.2)
    except OSError:
        pass  # the server may drop a slow client: that is a fine defence


def fast_latencies(port):
    latencies, failures = [], 0
    for _ in range(FAST_REQUESTS):
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=FAST_TIMEOUT):  # noqa: S310
                latencies.append(time.perf_counter() - started)
        except (OSError, urllib.error.URLError):
            failures += 1
    return latencies, failures


def measure(port, token, slow_clients, part):
    stop = threading.Event()
    threads = [threading.Thread(target=slow_client, args=(port, token, stop, part), daemon=True)
               for _ in range(slow_clients)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # let them take their connections
    try:
        return fast_latencies(port)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)


def main():
    parser = argparse.ArgumentParser(description="Worker models under slow clients.")
    parser.add_argument("--slow", choices=("body", "headers"), default="body",
                        help="what the slow clients send one byte at a time (default: a PUT's body)")
    args = parser.parse_args()
    url, server = database_url()
    migrate(url)
    token = admin_token(url)
    print(f"{WORKERS} workers, sync with 1 thread, gthread with {THREADS}; {FAST_REQUESTS} GET /readyz per row, "
          f"timeout {FAST_TIMEOUT}s; slow clients send their {args.slow} a byte every 0.2 s")
    print(f"{'model':8} {'slow':>4} {'median ms':>10} {'p90 ms':>8} {'failed':>6} {'x baseline':>10}")
    for worker_class in ("sync", "gthread"):
        process, port = serve(url, worker_class)
        try:
            baseline = None
            for slow in SLOW_CLIENT_COUNTS:
                latencies, failures = measure(port, token, slow, args.slow)
                median = statistics.median(latencies) * 1000 if latencies else float("nan")
                p90 = statistics.quantiles(latencies, n=10)[-1] * 1000 if len(latencies) >= 2 else float("nan")
                baseline = median if baseline is None else baseline
                ratio = median / baseline
                print(f"{worker_class:8} {slow:>4} {median:>10.2f} {p90:>8.2f} {failures:>6} {ratio:>10.2f}")
        finally:
            process.terminate()
            process.wait(timeout=30)
    del server


if __name__ == "__main__":
    main()
