"""The service as deployed: `ktpel-coverage serve` (gunicorn, gthread) on a free loopback port.

(Or another module that serves HTTP on $PORT with gunicorn: bench/stack_floor.py.)
"""
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from service.config import Settings


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connections_held(pids, port):
    """How many open client connections on `port` each of these processes holds now, most first ([3, 1, 0, 0]).

    With gunicorn's own gthread worker a load generator's connections, opened together, often
    fell two, three or four on one worker, which served them on one core (bench/RESULTS.md,
    Round 10); the service's workers deal them out (server.ThreadWorker, Round 11), and every
    bench row shows how each run's fell.
    """
    held = []
    for pid in pids:
        try:
            connections = psutil.Process(pid).net_connections("tcp")
        except psutil.NoSuchProcess:
            continue
        held.append(sum(1 for c in connections if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port))
    return sorted(held, reverse=True)


class Service:
    """One gunicorn master and its workers; stopped (by its own pid) when the block ends."""

    def __init__(self, database_url, *, workers=Settings.web_concurrency, threads=None, extra_env=None,
                 module="service.cli", arguments=("serve",)):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DATABASE_URL": database_url, "HOST": "127.0.0.1", "PORT": str(self.port),
               "WEB_CONCURRENCY": str(workers), "PUBLIC_READ": "false", **(extra_env or {})}
        if threads:
            env["THREADS"] = str(threads)
        self.log_path = Path(tempfile.mkstemp(prefix="ktpel-bench-gunicorn-", suffix=".log")[1])
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([sys.executable, "-m", module, *arguments], env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_until_up(workers)

    def _wait_until_up(self, workers, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.close()
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}: "
                                   f"{self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                if self.call("GET", "/healthz", timeout=1)[0] == 200 and len(self.worker_pids()) >= workers:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer /healthz in {timeout} s")

    def call(self, method, path, *, token=None, body=None, timeout=30):
        """One request: (status, decoded JSON body or None)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            answer = conn.getresponse()
            raw = answer.read()
        finally:
            conn.close()
        try:
            return answer.status, json.loads(raw) if raw else None
        except ValueError:
            return answer.status, None

    def worker_pids(self):
        try:
            return [child.pid for child in psutil.Process(self.process.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def connections_per_worker(self):
        """How many open client connections each worker holds now, most first (connections_held)."""
        return connections_held(self.worker_pids(), self.port)

    def worker_rss_mb(self):
        """The resident memory of each worker now, in MB."""
        sizes = []
        for pid in self.worker_pids():
            try:
                sizes.append(psutil.Process(pid).memory_info().rss / 1e6)
            except psutil.NoSuchProcess:
                continue
        return sizes

    def stop(self):
        """Stop gunicorn; `worker_restarts` then says how often max_requests recycled a worker."""
        if self._log.closed:
            return
        died = self.process.poll() is not None
        if not died:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        self.worker_restarts = self.log_path.read_text(errors="replace").count("Autorestarting worker")
        if died:
            print(f"gunicorn had exited by itself ({self.process.returncode}); its log: {self.log_path}",
                  file=sys.stderr)
        else:
            self.log_path.unlink()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
