"""The service under a real gunicorn on a free loopback port, for tests that need a real server."""
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CLI = Path(sys.executable).parent / "ktpel-coverage"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn(database_url, *, startup_seconds=30, **environment):
    """Serve on 127.0.0.1:<free port> until the block ends; yields the base URL."""
    port = free_port()
    env = dict(os.environ, DATABASE_URL=database_url, HOST="127.0.0.1", PORT=str(port),
               WEB_CONCURRENCY="1", **{k.upper(): str(v) for k, v in environment.items()})
    process = subprocess.Popen([str(CLI), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {process.stderr.read().decode(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(base_url + "/healthz", timeout=2):  # noqa: S310 - our own http URL
                    break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not answer /healthz in time") from None
                time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
