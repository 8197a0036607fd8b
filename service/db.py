"""Connections to PostgreSQL: the pools, the request's connection, transactions and reads."""
import datetime as dt
import hashlib
import re
import select
import threading
import weakref
from contextlib import contextmanager

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras
import psycopg2.sql
from flask import current_app, g

from .errors import DatabaseUnavailable

# Errors that mean the connection or the server is gone, not that the query was wrong.
CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


class ServiceConnection(psycopg2.extensions.connection):
    """A pooled connection; carried_check is the request's check its next statement carries (carry_check()).

    Its cursors are CheckCarryingCursors: a statement that went out on another kind of cursor
    would run before the check it should have carried.
    """

    carried_check = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prepared_names = set()  # the Prepared statements its session holds (Prepared.as_string)

    def cursor(self, name=None, cursor_factory=None, **kwargs):
        if cursor_factory is not None and not issubclass(cursor_factory, CheckCarryingCursor):
            raise TypeError(f"{cursor_factory.__name__} does not carry the request's check: "
                            "use TupleCursor or DictRowCursor")
        if name is not None:
            # psycopg2 sends a named cursor's query as DECLARE name CURSOR FOR <query>: a check
            # carried in front of it would make that DECLARE ... FOR SELECT ...; SELECT ..., an error.
            raise TypeError("a named (server-side) cursor cannot carry the request's check: "
                            "page with LIMIT on a service connection")
        return super().cursor(name, cursor_factory, **kwargs)


@contextmanager
def _check_not_carried(conn):
    """Statements run in this block carry no check (a PREPARE: the check goes with the EXECUTE after it)."""
    check = getattr(conn, "carried_check", None)
    if check is None:
        yield
        return
    conn.carried_check = None
    try:
        yield
    finally:
        conn.carried_check = check


class CheckCarryingCursor(psycopg2.extensions.cursor):
    """A cursor whose first statement on the request's primary connection carries its check (carry_check()).

    It also writes a Prepared statement's values itself (Prepared.quoted), as psycopg2 would.
    """

    def mogrify(self, query, vars=None):
        quoted = _quoted(self, query, vars)
        return super().mogrify(query, vars) if quoted is None else quoted

    def execute(self, query, vars=None):
        check = getattr(self.connection, "carried_check", None)
        if check is None or check.settled:
            quoted = _quoted(self, query, vars)
            return super().execute(query, vars) if quoted is None else super().execute(quoted)
        # A Prepared statement's PREPARE goes first, alone. Bytes without values are sent as they
        # are (a _BeginCarryingCursor's statement, quoted already).
        statement = query if vars is None and type(query) is bytes else self.mogrify(query, vars)
        try:
            result = super().execute(self.mogrify(check.query, check.params) + b";\n" + statement)
        except psycopg2.Error as exc:
            check.failed(exc)  # raises the refusal when it was the check that failed
            raise
        check.confirmed = True
        return result


class TupleCursor(CheckCarryingCursor):
    """Rows as tuples, for many rows (no dict for each)."""


class DictRowCursor(CheckCarryingCursor):
    """Rows as plain dicts keyed by column name.

    psycopg2's RealDictCursor fills each row in Python, a column at a time (a tenth of the
    province answer's time for its 38 rows of 10 columns); dict(zip()) does it in C.
    """

    def _names(self):
        return [column.name for column in self.description]

    def fetchone(self):
        row = super().fetchone()
        return None if row is None else dict(zip(self._names(), row, strict=True))

    def fetchmany(self, size=None):
        rows = super().fetchmany(size or self.arraysize)
        names = self._names()
        return [dict(zip(names, row, strict=True)) for row in rows]

    def fetchall(self):
        rows = super().fetchall()
        names = self._names()
        return [dict(zip(names, row, strict=True)) for row in rows]

    def __iter__(self):
        # Not super().__iter__(): a psycopg2 cursor is its own iterator, which would call this again.
        while (row := self.fetchone()) is not None:
            yield row


class Array:
    """A list sent as one array literal ('{"a","b"}'), for the query to cast: %(codes)s::text[].

    psycopg2 sends a list as ARRAY['a', 'b', ...], an expression of one constant per element,
    which the server parses and coerces one by one: for the four arrays of a 10,000-item batch
    that took 144 ms against 32 ms for the same values as literals (bench/RESULTS.md). Elements
    are str, int, date or None; a text is double-quoted with its backslashes and double quotes
    escaped, and the literal as a whole is quoted by psycopg2 like any other string.
    """

    __slots__ = ("values",)

    def __init__(self, values):
        self.values = values

    def literal(self):
        return "{" + ",".join(map(_array_element, self.values)) + "}"


def _array_element(value):
    kind = type(value)  # exact types first: this runs for every element of a 10,000-item batch's arrays
    if kind is str:
        if "\\" in value or '"' in value:
            value = value.replace("\\", "\\\\").replace('"', '\\"')
        return '"' + value + '"'
    if kind is int or kind is dt.date:
        return str(value)  # a date prints as YYYY-MM-DD
    if value is None:
        return "NULL"
    raise TypeError(f"db.Array holds str, int, date or None, not {kind.__name__}")


psycopg2.extensions.register_adapter(Array, lambda array: psycopg2.extensions.QuotedString(array.literal()))


def _literal(value, cursor):
    """The value as an SQL literal, as cursor.mogrify("%s", (value,)) writes it (a test holds the two
    to one answer; where standard_conforming_strings is off, psycopg2 writes E'...', the same value).

    psycopg2 adapts every value through several calls of its adaptation protocol: 5-12 us for a
    statement of seven values, and a POST sends 34 values in its five statements. Written here for
    the types those statements send, on a UTF8 connection (Prepared.quoted): in a text with no
    backslash only the quote is special (doubled) whatever standard_conforming_strings says, and no
    UTF-8 character has a quote among its bytes. A text with a backslash or a NUL (which psycopg2
    refuses) and every other type go to psycopg2.
    """
    kind = type(value)
    if kind is str and "\\" not in value and "\x00" not in value:
        return b"'" + value.replace("'", "''").encode() + b"'"
    if kind is int:  # not bool; a negative number leads with a space, so that "1-%s" cannot become a -- comment
        return str(value).encode() if value >= 0 else b" " + str(value).encode()
    if value is None:
        return b"NULL"
    if kind is dt.date:  # not datetime
        return b"'" + value.isoformat().encode() + b"'::date"
    if kind is Array:
        return _literal(value.literal(), cursor)  # its adapter: the literal, quoted as a text
    if kind is psycopg2.extras.Json:
        return _literal(value.dumps(value.adapted), cursor)  # Json.getquoted: the JSON, quoted as a text
    return psycopg2.extensions.cursor.mogrify(cursor, "%s", (value,))


def _quoted(cursor, query, vars):
    """The statement to send for a Prepared one (or one composed of Prepared ones and SQL) with its
    values (a dict), written by Prepared.quoted; None for any other, which psycopg2 writes."""
    if type(vars) is not dict or cursor.connection.encoding != "UTF8":
        return None
    kind = type(query)
    if kind is Prepared:
        return query.quoted(cursor, vars)
    # An SQL part is sent as it is: one holding a % (which psycopg2 would format) is left to psycopg2.
    if kind is psycopg2.sql.Composed and all(
            type(part) is Prepared or (type(part) is psycopg2.sql.SQL and "%" not in part.string)
            for part in query.seq):
        return b"".join([part.quoted(cursor, vars) if type(part) is Prepared else part.string.encode()
                         for part in query.seq])
    return None


class Prepared(psycopg2.sql.Composable):
    """A statement PostgreSQL parses and plans once per connection, then runs as EXECUTE name(values).

    For the statements behind the busiest answers: parsing and planning the province answer's
    statement cost PostgreSQL more than running it (pgbench, the same statement: 2,050
    answers/s sent as text, 3,700/s prepared). Written like any query, with %(name)s
    placeholders, named for what it does (the name shows in pg_prepared_statements and in what
    is sent), and run with cur.execute(statement, params) on any cursor of any connection:
    the first time on a connection it sends PREPARE (one round trip, once), and every time it
    becomes EXECUTE with the values quoted as psycopg2 quotes them. It is planned once, for any
    values (plan_cache_mode=force_generic_plan, in Pool): left to choose, PostgreSQL plans each
    execution for its values until it trusts a generic plan, and for the nation answer never did.
    A prepared statement lasts as long as its session, whatever becomes of the transaction it was
    prepared in, and PostgreSQL plans it again when a table it reads changes. Placeholders are
    named only; each one must have one type wherever it is used (PostgreSQL infers it). A
    connection whose server session lost its statements, or holds one whose result type changed,
    is closed by Pool.transaction (PREPARED_STATEMENTS_LOST), so the next one prepares from scratch.
    """

    def __init__(self, name, query):
        names = list(dict.fromkeys(_NAMED_PLACEHOLDER.findall(query)))
        if "%" in _NAMED_PLACEHOLDER.sub("", query).replace("%%", ""):
            raise ValueError("a Prepared statement takes %(name)s placeholders only (and %% for a %)")
        self.text = query % {name: f"${number}" for number, name in enumerate(names, 1)}
        # The text's hash in the name: two versions of a statement never take each other's name.
        self.name = f"{name}_{hashlib.sha256(self.text.encode()).hexdigest()[:8]}"
        arguments = "(" + ", ".join(f"%({name})s" for name in names) + ")" if names else ""
        self._execute = f"EXECUTE {self.name}{arguments}"
        self._names = tuple(names)
        self._call = f"EXECUTE {self.name}(".encode()
        super().__init__(query)

    def quoted(self, cursor, params):
        """EXECUTE name(values) as psycopg2 would write it from the params (a dict), with the service's
        own literals (_literal); the PREPARE is sent first on a connection that has not got it yet."""
        self.as_string(cursor)
        if not self._names:
            return self._execute.encode()
        return self._call + b", ".join([_literal(params[name], cursor) for name in self._names]) + b")"

    def as_string(self, context):
        conn = context if isinstance(context, psycopg2.extensions.connection) else context.connection
        prepared = getattr(conn, "prepared_names", None)
        if prepared is None:  # a connection not of the pool's kind
            with _PREPARED_LOCK:
                prepared = _PREPARED.setdefault(conn, set())
        if self.name not in prepared:
            with conn.cursor() as cur, _check_not_carried(conn):  # the check goes with the statement itself
                cur.execute(f"PREPARE {self.name} AS {self.text}")
            prepared.add(self.name)  # only once PREPARE has succeeded: it is not undone by a rollback
        return self._execute


# What a connection raises when the statements the server holds for it are no longer the ones
# _PREPARED lists: "prepared statement ... does not exist" (something ran DEALLOCATE ALL or DISCARD
# ALL on it: a pooler in transaction mode, which the README rules out), "... already exists",
# or "cached plan must not change result type" (a column's type changed under a running version).
PREPARED_STATEMENTS_LOST = (psycopg2.errors.InvalidSqlStatementName, psycopg2.errors.DuplicatePreparedStatement,
                            psycopg2.errors.FeatureNotSupported)


def _prepared_statements_lost(exc):
    return not isinstance(exc, psycopg2.errors.FeatureNotSupported) or "cached plan must not change" in str(exc)


_NAMED_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# The names prepared on each connection that is not a ServiceConnection (a connection is used by
# one thread at a time).
_PREPARED = weakref.WeakKeyDictionary()
_PREPARED_LOCK = threading.Lock()


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
            # No parallel workers: every statement here is a few index probes for one request, and
            # starting workers cost the feed page 4 ms of its 5 (a misestimated LIMIT 101 was planned
            # as a Gather Merge) with no idle core to run them on under load.
            # Prepared statements keep one generic plan (Prepared): left to choose, PostgreSQL planned
            # the nation answer's statement anew at every execution, 0.5-0.7 ms of its 3.6.
            "options": f"-c statement_timeout={int(statement_timeout_ms)} -c TimeZone=UTC"
                       " -c max_parallel_workers_per_gather=0 -c plan_cache_mode=force_generic_plan",
            "connection_factory": ServiceConnection,
            "cursor_factory": DictRowCursor,
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
    def transaction(self, held=None, *, autocommit=False):
        """One transaction on a pooled connection: committed on success, rolled back on error.

        With `held` (a RequestConnection of this pool), on the connection the request holds,
        which stays checked out; a connection lost on the way is marked broken there.
        With autocommit, psycopg2 opens no transaction: each statement is one (reading()), or
        the SQL opens one itself (carried_transaction()).
        """
        conn = self.getconn() if held is None else held.conn
        broken = False
        try:
            if autocommit:
                # Not `with conn`: since psycopg2 2.9 it opens a transaction even in autocommit.
                conn.autocommit = True
                try:
                    yield conn
                finally:
                    if not conn.closed:
                        conn.autocommit = False
            else:
                with conn:
                    yield conn
        except psycopg2.errors.QueryCanceled:
            raise
        except PREPARED_STATEMENTS_LOST as exc:  # before CONNECTION_ERRORS: one is an OperationalError
            if not _prepared_statements_lost(exc):
                broken = bool(conn.closed)
                raise
            broken = True  # closed, not kept: the next connection prepares from scratch
            raise DatabaseUnavailable("The database connection had to be opened again; this request's "
                                      "transaction was rolled back. Try again.") from exc
        except CONNECTION_ERRORS as exc:
            broken = True
            raise DatabaseUnavailable("The database connection was lost.") from exc
        except BaseException:
            broken = bool(conn.closed)
            raise
        finally:
            if held is None:
                self.putconn(conn, broken=broken)
            else:
                held.broken = held.broken or broken


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
        if conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            _roll_back_in_autocommit(conn)  # a transaction begun by SQL, which rollback() does not see
    except psycopg2.Error:  # lost, or in a state we do not know how to undo: not worth keeping
        return False
    return conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE


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


class _Deferred:
    """Stands in for a connection: its cursors keep each statement (interpolated) instead of running it."""

    def __init__(self, conn):
        self.conn = conn
        self.statements = []
        self._quoting = None  # one cursor of conn's quotes every statement of the block

    def cursor(self, *args, **kwargs):
        return _DeferredCursor(self)

    def keep(self, query, vars):
        if self._quoting is None:
            self._quoting = self.conn.cursor()
        self.statements.append(self._quoting.mogrify(query, vars))

    def close(self):
        if self._quoting is not None:
            self._quoting.close()


class _DeferredCursor:
    def __init__(self, deferred):
        self._deferred = deferred

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def execute(self, query, vars=None):
        self._deferred.keep(query, vars)

    def _no_rows(self, *args):
        raise TypeError("statements sent together() return no rows: run a statement whose result is read on conn")

    fetchone = fetchmany = fetchall = _no_rows


@contextmanager
def together(conn, *, commit=False):
    """Statements whose results nobody reads, sent in one round trip when the block ends.

    Yields a stand-in for conn to pass to query functions that write (`with conn.cursor() as
    cur: cur.execute(...)`). PostgreSQL runs the statements of one query string in order, in
    the open transaction, and stops at the first error, which is raised here. None of the
    statements is sent when the block raises (but a Prepared statement's PREPARE is sent when it
    is first quoted, inside the block; it changes no data). With commit (in a
    carried_transaction()), COMMIT follows them.
    """
    deferred = _Deferred(conn)
    try:
        yield deferred
    finally:
        deferred.close()
    statements = deferred.statements + ([b"COMMIT"] if commit else [])
    if statements:
        with conn.cursor() as cur:
            cur.execute(b"\n;\n".join(statements))  # on a line of its own: not inside a trailing -- comment


@contextmanager
def carried_transaction():
    """A transaction on the primary whose BEGIN and COMMIT cost no round trips of their own.

    BEGIN goes with the block's first statement, COMMIT with the writes of a
    together(conn, commit=True), which ends the block; an error before that rolls it back.
    For the hot write path: besides the two round trips, the locks its writes take (the feed
    counter's row) are released as soon as the server has run them, not when the worker's
    thread gets the GIL back to send COMMIT.
    """
    with _connection(current_app.extensions["ktpel_pools"]["write"], autocommit=True) as conn:
        carrier = _BeginCarrier(conn)
        try:
            yield carrier
        except BaseException:
            _roll_back_quietly(conn)
            raise
        if conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            _roll_back_quietly(conn)
            raise RuntimeError("a carried_transaction() must end with together(conn, commit=True)")


class _BeginCarrier:
    """Stands in for an autocommit connection: the first statement run on its cursors carries BEGIN."""

    def __init__(self, conn):
        self.conn = conn
        self.begun = False

    def cursor(self, *args, **kwargs):
        return _BeginCarryingCursor(self.conn.cursor(*args, **kwargs), self)


class _BeginCarryingCursor:
    def __init__(self, cursor, carrier):
        self._cursor = cursor
        self._carrier = carrier

    def execute(self, query, vars=None):
        if self._carrier.begun:
            return self._cursor.execute(query, vars)
        statement = self._cursor.mogrify(query, vars)
        self._carrier.begun = True
        return self._cursor.execute(b"BEGIN;\n" + statement)

    def __getattr__(self, name):
        return getattr(self._cursor, name)

    def __iter__(self):
        return iter(self._cursor)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._cursor.close()
        return False


def _roll_back_quietly(conn):
    """ROLLBACK on an autocommit connection left in a transaction (psycopg2's rollback() sends nothing there)."""
    if conn.closed or conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE:
        return
    try:
        _roll_back_in_autocommit(conn)
    except CONNECTION_ERRORS:
        pass


def _roll_back_in_autocommit(conn):
    was = conn.autocommit
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("ROLLBACK")
    finally:
        if not conn.closed:
            conn.autocommit = was


def make_pool(settings, dsn):
    return Pool(
        dsn,
        maxconn=settings.pool_max,
        timeout=settings.pool_timeout_seconds,
        connect_timeout=settings.connect_timeout_seconds,
        statement_timeout_ms=settings.statement_timeout_ms,
    )


class RequestConnection:
    """A connection of the primary's pool that one request keeps from its key check to its end.

    The key check runs on it (one statement, autocommit: no BEGIN or COMMIT of its own) and the
    request's transactions run on it after, so an authenticated request checks out one
    connection instead of two and saves three round trips. Returned in teardown.
    """

    def __init__(self, pool, conn):
        self.pool = pool
        self.conn = conn
        self.busy = False  # inside a transaction(): a nested one takes a connection of its own
        self.broken = False


_HELD = "ktpel_request_connection"


def run_on_primary(work, *, keep_for_request):
    """work(conn) on a primary connection in autocommit (each statement its own transaction).

    For checks that must see the primary at once (a revoked key). With keep_for_request the
    connection stays with the request for its transactions on the primary (transaction()).
    """
    pool = current_app.extensions["ktpel_pools"]["write"]
    held = g.get(_HELD)
    if held is None or held.busy or held.broken:
        held = RequestConnection(pool, pool.getconn())  # DatabaseUnavailable when none comes
        if keep_for_request and g.get(_HELD) is None:
            g.setdefault(_HELD, held)
    try:
        with pool.transaction(held, autocommit=True) as conn:
            return work(conn)
    finally:
        if g.get(_HELD) is not held:
            pool.putconn(held.conn, broken=held.broken or bool(held.conn.closed))


def release_request_connection(_exc=None):
    """Teardown: give the request's connection back to its pool (what it left open is rolled back)."""
    held = g.pop(_HELD, None)
    if held is not None:
        held.pool.putconn(held.conn, broken=held.broken)


@contextmanager
def transaction():
    """A transaction on the primary for the current request: committed on success, rolled back on error."""
    with _connection(current_app.extensions["ktpel_pools"]["write"], autocommit=False) as conn:
        yield conn


@contextmanager
def reading():
    """A connection for the current request's reads: the replica's when one is configured.

    In autocommit: each statement is a transaction of its own and sees every commit made before
    it started. Under READ COMMITTED a transaction around several reads would give them no common
    snapshot either (each statement takes a fresh one), so BEGIN and COMMIT would only add two
    round trips to every read answer.
    """
    with _connection(current_app.extensions["ktpel_pools"]["read"], autocommit=True) as conn:
        yield conn


@contextmanager
def _connection(pool, *, autocommit):
    held = g.get(_HELD)
    if held is None or held.pool is not pool or held.busy or held.broken:
        with pool.transaction(autocommit=autocommit) as conn, _carrying(pool, conn):
            yield conn
        return
    held.busy = True
    try:
        with pool.transaction(held, autocommit=autocommit) as conn, _carrying(pool, conn):
            yield conn
    finally:
        held.busy = False


class CarriedCheck:
    """A check of the request's (auth.py: its key is still good) that its first statement on the primary carries.

    Sent in the same query string as that statement, before it (CheckCarryingCursor.execute): when the
    check raises, with `sqlstate`, the statement does not run, and `refusal()` is raised in its
    place. A request that ends without a statement on the primary runs it alone (settle_check()).
    """

    def __init__(self, query, params, *, sqlstate, refusal):
        self.query, self.params = query, params
        self.sqlstate, self.refusal = sqlstate, refusal
        self.confirmed = self.refused = False

    @property
    def settled(self):
        return self.confirmed or self.refused

    def failed(self, exc):
        """A query string carrying the check failed: raise the refusal if the check is what failed."""
        if getattr(exc, "pgcode", None) == self.sqlstate:
            self.refused = True
            raise self.refusal() from exc


_CHECK = "ktpel_carried_check"


def carry_check(check):
    """Have the request's first statement on the primary carry the check (and settle_check() run it otherwise)."""
    g.setdefault(_CHECK, check)


def settle_check():
    """Run the request's check alone on the primary unless a statement carried it; its refusal if it fails."""
    check = g.get(_CHECK)
    if check is None or check.settled:
        return
    with _connection(current_app.extensions["ktpel_pools"]["write"], autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT true")  # carries the check, which settles it either way


@contextmanager
def _carrying(pool, conn):
    """The request's unsettled check rides on this connection's next statement, when it is the primary's."""
    check = g.get(_CHECK)
    if check is None or check.settled or pool is not current_app.extensions["ktpel_pools"]["write"]:
        yield
        return
    conn.carried_check = check
    try:
        yield
    finally:
        conn.carried_check = None
