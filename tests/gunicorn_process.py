"""`ktpel-coverage serve` (real gunicorn) on a free loopback port, for tests about the served service."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

CLI = Path(sys.executable).parent / "ktpel-coverage"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Answer:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


class Served:
    """One gunicorn master and its workers; stopped by its own pid when the block ends."""

    def __init__(self, database_url, *, workers=2, **environment):
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, DATABASE_URL=database_url, HOST="127.0.0.1", PORT=str(self.port),
                   WEB_CONCURRENCY=str(workers), **{k.upper(): str(v) for k, v in environment.items()})
        for name in ("PUBLIC_READ", "DATABASE_READ_URL"):
            if name.lower() not in environment:
                env.pop(name, None)
        # A metrics folder named here (as an operator may): a worker's pool gauge file in it
        # tells that the worker has built its app, so no test stops a worker still booting.
        self.metrics_dir = Path(tempfile.mkdtemp(prefix="ktpel-test-metrics-"))
        env["PROMETHEUS_MULTIPROC_DIR"] = str(self.metrics_dir)
        fd, self.log_path = tempfile.mkstemp(prefix="ktpel-test-gunicorn-", suffix=".log")
        self._log = os.fdopen(fd, "wb")
        self._final_log = None
        self.process = subprocess.Popen([str(CLI), "serve"], env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def __enter__(self):
        try:
            self.wait_until_serving()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def wait_until_serving(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log_text()[-3000:]}")
            try:
                if self.get("/healthz", timeout=1).status == 200 and self.workers_booted():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not serve in {timeout}s:\n{self.log_text()[-3000:]}")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        self._final_log = Path(self.log_path).read_text(errors="replace")
        Path(self.log_path).unlink(missing_ok=True)
        shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def workers_booted(self):
        pids = self.worker_pids()
        return len(pids) >= self.workers and all(
            (self.metrics_dir / f"gauge_livesum_{pid}.db").exists() for pid in pids)

    def worker_pids(self):
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except FileNotFoundError:
            return []

    def log_text(self):
        """Everything the server wrote so far; after stop, all of it."""
        if self._final_log is not None:
            return self._final_log
        return Path(self.log_path).read_text(errors="replace")

    def json_log_lines(self):
        lines = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines

    def request(self, method, path, *, body=None, headers=None, timeout=10):
        data = json.dumps(body).encode() if body is not None else None
        headers = dict(headers or {})
        if data is not None:
            headers.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)  # noqa: S310 - our own http URL
        try:
            with urllib.request.urlopen(req, timeout=timeout) as answer:  # noqa: S310 - our own http URL
                return Answer(answer.status, answer.headers, answer.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.headers, error.read())

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)
