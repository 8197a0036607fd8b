"""gunicorn as the service runs it, configured from the same Settings."""
import gc
import mmap
import os
import shutil
import sys
import tempfile
import time
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
        "pre_fork": give_a_connection_slot,
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


class ConnectionCounts:
    """How many connections each worker holds, in memory the master shares with every worker it forks.

    One slot per worker, given by the master before it forks the worker and freed when the
    worker is gone. A worker writes its count there from the moment it listens until it stops
    listening for good; meanwhile (booting, draining, gone) the slot is FREE, so no worker
    leaves a connection to one that will not take it. Every worker may read them all.
    """

    FREE = -1

    def __init__(self, slots):
        self._memory = mmap.mmap(-1, 4 * slots)  # anonymous and shared: the forked workers see one memory
        self._counts = memoryview(self._memory).cast("i")
        for slot in range(slots):
            self._counts[slot] = self.FREE

    def give(self, taken):
        """A slot none of `taken` holds (None when all are taken)."""
        for slot in range(len(self._counts)):
            if slot not in taken:
                self._counts[slot] = self.FREE
                return slot
        return None

    def free(self, slot):
        self._counts[slot] = self.FREE

    def set(self, slot, count):
        self._counts[slot] = count

    def fewest(self):
        """The fewest connections a live worker holds."""
        return min((count for count in self._counts.tolist() if count != self.FREE), default=0)


class ThreadWorker(gthread.ThreadWorker):
    """gunicorn's gthread worker, but a new connection goes first to a worker holding fewer, and it quits at once.

    **New connections.** Every worker waits on the one listening socket, and the first awake
    takes what is there: when a client opened a few keep-alive connections at once, one worker
    often took them all, then served them on one core with the others idle (four connections of
    wrk: 5 times in 28 on one worker, at a third of the throughput; bench/RESULTS.md, round 10).
    Here each worker keeps the number of connections it holds where the others can read it
    (ConnectionCounts). A worker woken by a new connection while another holds fewer leaves it
    to that one for ACCEPT_WAIT_PER_CONNECTION for each connection it holds (ACCEPT_WAIT_MAX at
    most), then takes it if it is still there (one connection for each wait). A worker holding
    no more than any other takes it at once, as gunicorn's does, so while the workers hold as
    many (short-lived connections spread evenly) nobody waits; and one that is left with none
    listens again at once.

    **Quitting.** gunicorn's shuts its thread pool down in the handler of SIGINT and SIGQUIT,
    inside the pool's lock. Ctrl-C in a terminal (`make run`) sends SIGINT to the master and to
    every worker, and the master then sends each worker SIGQUIT: when the second handler ran
    while the first held that lock, or the one handler while the worker's main thread was
    handing a request to the pool (CPython issue 121649), it waited for the lock for ever, until
    the master killed the worker GRACEFUL_TIMEOUT_SECONDS later ("was sent SIGKILL! Perhaps out
    of memory?"; tests/test_worker_signals.py). Here either signal runs gunicorn's quit common to
    every worker class (the worker_int hook, then exit) without that shutdown, once: the pool's
    threads still finish what they hold when the process exits, as they did after it. The
    handler is gunicorn's own method, so it is in place from the moment the worker sets its
    signals, before it builds the app. SIGTERM (a graceful stop: systemd, Docker) never touched
    the pool and is as it was.
    """

    ACCEPT_WAIT_PER_CONNECTION = 0.002  # seconds
    ACCEPT_WAIT_MAX = 0.01

    connection_counts = None  # the master's ConnectionCounts and this worker's slot in them,
    connection_slot = None  # given before it forks the worker (give_a_connection_slot)

    _quitting = False
    _held = 0
    _counted = False  # its count is in connection_counts: it listens
    _orphaned = False  # its master is gone: gunicorn's loop ends, as when it stops
    _accept_from = 0.0  # (monotonic) until then, new connections are left to other workers
    _accept_until = 0.0  # from _accept_from until then, one is taken without leaving it first

    @property
    def nr_conns(self):
        """The connections this worker holds (gunicorn's count), written where the others read it too."""
        return self._held

    @nr_conns.setter
    def nr_conns(self, held):
        self._held = held
        if self._counted:
            self.connection_counts.set(self.connection_slot, held)

    def accept(self, listener):
        now = time.monotonic()
        if now < self._accept_from:
            return  # another listening socket's event, from the same wake-up
        if now >= self._accept_until and self._another_holds_fewer():
            wait = min(self._held * self.ACCEPT_WAIT_PER_CONNECTION, self.ACCEPT_WAIT_MAX)
            self._accept_from, self._accept_until = now + wait, now + 2 * wait
            self.set_accept_enabled(False)
            return
        self._accept_until = 0.0  # one connection for each wait
        super().accept(listener)

    def _another_holds_fewer(self):
        return self._counted and self._held and self.connection_counts.fewest() < self._held

    def set_accept_enabled(self, enabled):
        if enabled and time.monotonic() < self._accept_from:
            if self._held:
                return  # gunicorn's loop asks on every turn; it is asked again on the turn after the wait
            self._accept_from = 0.0  # holding none: no worker holds fewer
        super().set_accept_enabled(enabled)
        if enabled and self.alive and not self._counted and self.connection_slot is not None:
            self._counted = True  # it listens (gunicorn's run, first thing): counted from now
            self.connection_counts.set(self.connection_slot, self._held)
        elif not enabled and self._counted and (not self.alive or self._orphaned):
            self._counted = False  # stopping (SIGTERM, MAX_REQUESTS, no master): it will take no more
            self.connection_counts.free(self.connection_slot)

    def is_parent_alive(self):
        if super().is_parent_alive():
            return True
        self._orphaned = True  # no child_exit will free its slot: it frees it when it stops listening
        return False

    def wait_for_and_dispatch_events(self, timeout):
        left = self._accept_from - time.monotonic()
        super().wait_for_and_dispatch_events(min(timeout, left) if left > 0 else timeout)

    def handle_quit(self, sig, frame):
        if self._quitting:
            return  # on its way out already
        self._quitting = True
        Worker.handle_quit(self, sig, frame)


# WORKER_CLASS names gunicorn's worker classes; these are the service's versions of them.
# (gunicorn runs WORKER_CLASS=sync with THREADS above 1 as its own gthread worker.)
WORKER_CLASSES = {"gthread": f"{__name__}.{ThreadWorker.__qualname__}"}


_connection_counts = None  # the master's, made before it forks the first worker


def give_a_connection_slot(server, worker):
    """Before a worker is forked: its slot in the ConnectionCounts every worker shares (ThreadWorker)."""
    global _connection_counts
    if _connection_counts is None:
        _connection_counts = ConnectionCounts(max(64, 2 * server.num_workers))
    taken = {getattr(other, "connection_slot", None) for other in server.WORKERS.values()}
    worker.connection_counts = _connection_counts
    worker.connection_slot = _connection_counts.give(taken)


def free_the_connection_slot(server, worker):
    """A worker is gone: its connections no longer count (give_a_connection_slot)."""
    if getattr(worker, "connection_slot", None) is not None:
        worker.connection_counts.free(worker.connection_slot)


def child_exit(server, worker):
    """A worker is gone: its live gauges (pool usage) must stop counting, its connections too."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
    free_the_connection_slot(server, worker)


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
