"""The connection pools and the transaction() context manager; nothing else."""
import threading
from contextlib import contextmanager

import psycopg2
import psycopg2.errors
import psycopg2.extras
import psycopg2.pool
from flask import current_app

from .errors import DatabaseUnavailable

# Errors that mean the connection or the server is gone, not that the query was wrong.
CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


class Pool:
    """A psycopg2 pool that waits a bounded time for a free connection."""

    def __init__(self, dsn, *, minconn, maxconn, timeout, connect_timeout, statement_timeout_ms):
        self._dsn = dsn
        self._kwargs = {
            "connect_timeout": connect_timeout,
            "application_name": "ktpel-coverage",
            "options": f"-c statement_timeout={int(statement_timeout_ms)} -c TimeZone=UTC",
            "cursor_factory": psycopg2.extras.RealDictCursor,
            "keepalives": 1,
            "keepalives_idle": 30,
        }
        self._minconn = minconn
        self._maxconn = maxconn
        self._timeout = timeout
        self._slots = threading.BoundedSemaphore(maxconn)
        self._pool = None
        self._lock = threading.Lock()

    def _inner(self):
        with self._lock:
            if self._pool is None:
                # Created lazily so that a service started while the database is down still boots.
                pool = psycopg2.pool.ThreadedConnectionPool(0, self._maxconn, self._dsn, **self._kwargs)
                # psycopg2 closes a returned connection unless fewer than minconn are idle: with 0 every
                # transaction paid a new server connection (7x slower reads, bench/RESULTS.md). Keep them.
                pool.minconn = self._maxconn
                self._pool = pool
            return self._pool

    @property
    def size(self):
        return self._maxconn

    @property
    def in_use(self):
        pool = self._pool
        return 0 if pool is None else len(pool._used)

    def getconn(self):
        if not self._slots.acquire(timeout=self._timeout):
            raise DatabaseUnavailable("No database connection became free in time.")
        try:
            return self._inner().getconn()
        except CONNECTION_ERRORS as exc:
            self._slots.release()
            raise DatabaseUnavailable("The database cannot be reached.") from exc
        except BaseException:
            self._slots.release()
            raise

    def putconn(self, conn, *, broken=False):
        try:
            self._inner().putconn(conn, close=broken or bool(conn.closed))
        finally:
            self._slots.release()

    def closeall(self):
        with self._lock:
            if self._pool is not None:
                self._pool.closeall()
                self._pool = None

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


def make_pool(settings, dsn):
    return Pool(
        dsn,
        minconn=settings.pool_min,
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
