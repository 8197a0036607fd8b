"""gunicorn as the service runs it, configured from the same Settings."""
import gc
import os
import shutil
import sys
import tempfile
from pathlib import Path

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger
from gunicorn.workers import gthread
from gunicorn.workers.base import Worker

from .logs import JsonFormatter

METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def gunicorn_options(settings):
    """The gunicorn settings for these Settings (also what the tests check)."""
    s = settings
    return {
        "bind": f"{s.host}:{s.port}",
        "workers": s.web_concurrency,
        "worker_class": WORKER_CLASSES.get(s.worker_class, s.worker_class),
        "threads": s.threads,
        "timeout": s.worker_timeout_seconds,
        "graceful_timeout": s.graceful_timeout_seconds,
        "keepalive": s.keepalive_seconds,
        "max_requests": s.max_requests,
        "max_requests_jitter": s.max_requests_jitter,
        "forwarded_allow_ips": s.forwarded_allow_ips,
        "loglevel": s.log_level.lower(),
        "accesslog": None,  # the app writes one JSON line per request itself
        "errorlog": "-",
        "logger_class": JsonLogger,
        "child_exit": child_exit,
        "post_worker_init": freeze_what_the_worker_keeps,
    }


class JsonLogger(Logger):
    """gunicorn's own lines (start, worker exits, timeouts) as JSON too: one format on stderr."""

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter())


def freeze_what_the_worker_keeps(worker):
    """The worker has built its app: keep what it will hold for life out of the collector's way.

    The modules, the app, its routes and schemas live as long as the worker, about 40,000
    objects, and every full collection walked them all while the worker's threads waited for the
    GIL: 11 ms in one idle process, 25-85 ms on a loaded 2-core machine, where they added to the
    nation answer's p99 (bench/RESULTS.md). gc.freeze() moves them to a generation the
    collector never scans; what requests allocate is collected as before.
    """
    gc.collect()
    gc.freeze()


class ThreadWorker(gthread.ThreadWorker):
    """gunicorn's gthread worker, but SIGINT and SIGQUIT make it exit at once, and a second one changes nothing.

    gunicorn's shuts its thread pool down in the handler of either signal, inside the pool's
    lock. Ctrl-C in a terminal (`make run`) sends SIGINT to the master and to every worker, and
    the master then sends each worker SIGQUIT: when the second handler ran while the first held
    that lock, or the one handler while the worker's main thread was handing a request to the
    pool (CPython issue 121649), it waited for the lock for ever, until the master killed the
    worker GRACEFUL_TIMEOUT_SECONDS later ("was sent SIGKILL! Perhaps out of memory?";
    tests/test_worker_signals.py). Here either signal runs gunicorn's quit common to every worker
    class (the worker_int hook, then exit) without that shutdown, once: the pool's threads still
    finish what they hold when the process exits, as they did after it. The handler is gunicorn's
    own method, so it is in place from the moment the worker sets its signals, before it builds
    the app. SIGTERM (a graceful stop: systemd, Docker) never touched the pool and is as it was.
    """

    _quitting = False

    def handle_quit(self, sig, frame):
        if self._quitting:
            return  # on its way out already
        self._quitting = True
        Worker.handle_quit(self, sig, frame)


# WORKER_CLASS names gunicorn's worker classes; these are the service's versions of them.
# (gunicorn runs WORKER_CLASS=sync with THREADS above 1 as its own gthread worker.)
WORKER_CLASSES = {"gthread": f"{__name__}.{ThreadWorker.__qualname__}"}


def child_exit(server, worker):
    """A worker is gone: its live gauges (pool usage) must stop counting."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


class CoverageServer(BaseApplication):
    def __init__(self, settings):
        self.settings = settings
        super().__init__()

    def load_config(self):
        for key, value in gunicorn_options(self.settings).items():
            self.cfg.set(key, value)
        if "control_socket_disable" in self.cfg.settings:
            # gunicorn >= 25.1 opens a control socket at one path per user ($HOME/.gunicorn), which
            # every instance on the host would share; the service does not use it.
            self.cfg.set("control_socket_disable", True)

    def load(self):
        from . import create_app

        return create_app()


def prepare_metrics_dir(environ=os.environ):
    """An empty folder for the workers' metric files, named in the environment before they fork.

    prometheus_client picks its multiprocess mode when first imported; if something imported it
    already, its mode is switched here. Returns the folder when it was made here (to remove it).
    """
    made = _metrics_dir(environ)
    values = sys.modules.get("prometheus_client.values")
    if values is not None:
        # Imported early (a module-level import somewhere): switch its mode now, before the workers
        # fork and create their first sample; every metric here is labelled, so none exists yet.
        values.ValueClass = values.get_value_class()
    return made


def _metrics_dir(environ):
    existing = environ.get(METRICS_DIR_ENV)
    if existing:
        # The operator's folder: files from a previous run would be counted again, so clear them.
        path = Path(existing)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return None
    made = tempfile.mkdtemp(prefix="ktpel-metrics-")
    environ[METRICS_DIR_ENV] = made
    return made


def run(settings):
    made = prepare_metrics_dir()
    master = os.getpid()
    try:
        CoverageServer(settings).run()
    finally:
        # Workers are forked inside run() and leave through this block too: only the master may
        # remove the folder, or a recycled worker (MAX_REQUESTS) would take every worker's metrics.
        if made and os.getpid() == master:
            shutil.rmtree(made, ignore_errors=True)
