"""The connection pools and the transaction() context manager; nothing else."""
import select
import threading
from contextlib import contextmanager

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras
from flask import current_app

from .errors import DatabaseUnavailable

# Errors that mean the connection or the server is gone, not that the query was wrong.
CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


class Pool:
    """Up to maxconn connections per process, kept open between transactions; a bounded wait for one.

    (psycopg2.pool closes every connection returned beyond its minconn, which would mean a new
    connection per transaction; this pool keeps them.) Connections open on first use, so a
    service started while the database is down still boots.
    """

    def __init__(self, dsn, *, maxconn, timeout, connect_timeout, statement_timeout_ms):
        self._dsn = dsn
        self._kwargs = {
            "connect_timeout": connect_timeout,
            "application_name": "ktpel-coverage",
            "options": f"-c statement_timeout={int(statement_timeout_ms)} -c TimeZone=UTC",
            "cursor_factory": psycopg2.extras.RealDictCursor,
            "keepalives": 1,
            "keepalives_idle": 30,
        }
        self._maxconn = maxconn
        self._timeout = timeout
        self._slots = threading.BoundedSemaphore(maxconn)
        self._idle = []  # the most recently returned last, and reused first
        self._in_use = 0
        self._lock = threading.Lock()
        self.on_usage_change = None  # called with in_use after every checkout and return (metrics)

    @property
    def size(self):
        return self._maxconn

    @property
    def in_use(self):
        return self._in_use

    def getconn(self):
        if not self._slots.acquire(timeout=self._timeout):
            raise DatabaseUnavailable("No database connection became free in time.")
        try:
            conn = self._live_idle_connection() or psycopg2.connect(self._dsn, **self._kwargs)
        except CONNECTION_ERRORS as exc:
            self._slots.release()
            raise DatabaseUnavailable("The database cannot be reached.") from exc
        except BaseException:
            self._slots.release()
            raise
        with self._lock:
            self._in_use += 1
        self._usage_changed()
        return conn

    def _live_idle_connection(self):
        """An idle connection that still works; ones the server closed while idle are discarded."""
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn = self._idle.pop()
            if _idle_connection_alive(conn):
                return conn
            _close_quietly(conn)

    def putconn(self, conn, *, broken=False):
        try:
            if broken or not _ready_for_reuse(conn):
                _close_quietly(conn)
            else:
                with self._lock:
                    self._idle.append(conn)
        finally:
            with self._lock:
                self._in_use -= 1
            self._slots.release()
            self._usage_changed()

    def _usage_changed(self):
        if self.on_usage_change is not None:
            self.on_usage_change(self._in_use)

    def closeall(self):
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _close_quietly(conn)

    @contextmanager
    def transaction(self):
        """One transaction on a pooled connection: committed on success, rolled back on error."""
        conn = self.getconn()
        broken = False
        try:
            with conn:
                yield conn
        except psycopg2.errors.QueryCanceled:
            raise
        except CONNECTION_ERRORS as exc:
            broken = True
            raise DatabaseUnavailable("The database connection was lost.") from exc
        except BaseException:
            broken = bool(conn.closed)
            raise
        finally:
            self.putconn(conn, broken=broken)


def _ready_for_reuse(conn):
    """Roll back what a caller left open; False when the connection is closed or lost."""
    if conn.closed:
        return False
    status = conn.info.transaction_status
    if status == psycopg2.extensions.TRANSACTION_STATUS_IDLE:
        return True
    if status == psycopg2.extensions.TRANSACTION_STATUS_UNKNOWN:
        return False
    try:
        conn.rollback()
    except CONNECTION_ERRORS:
        return False
    return True


def _close_quietly(conn):
    try:
        conn.close()
    except CONNECTION_ERRORS:
        pass


def _idle_connection_alive(conn):
    """Whether an idle connection still works, without a round trip to the server.

    An idle connection has nothing to read; a readable socket means the server closed it
    (a restart, a terminated backend) or sent its FATAL goodbye, so it would fail the next query.
    """
    if conn.closed:
        return False
    try:
        readable, _, _ = select.select([conn], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def make_pool(settings, dsn):
    return Pool(
        dsn,
        maxconn=settings.pool_max,
        timeout=settings.pool_timeout_seconds,
        connect_timeout=settings.connect_timeout_seconds,
        statement_timeout_ms=settings.statement_timeout_ms,
    )


@contextmanager
def transaction(*, read_only=False):
    """A transaction for the current request; reads go to the replica when one is configured."""
    pools = current_app.extensions["ktpel_pools"]
    pool = pools["read"] if read_only else pools["write"]
    with pool.transaction() as conn:
        yield conn
