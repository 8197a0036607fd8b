"""A real PostgreSQL for every test: TEST_DATABASE_URL's server, or the embedded one.

Each test session works in a database of its own, created and migrated here and dropped
at the end, so several runs can share one server. Tables are emptied between tests.
"""
import os
import secrets
from pathlib import Path

import psycopg2
import psycopg2.extensions
import psycopg2.extras
import pytest

from service import create_app, embedded, migrate
from service.auth import new_token
from service.config import Settings
from service.keys import queries as keys

from .contract import ContractClient

PROJECT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT.parent / "shared" / "data"


def _with_dbname(url, dbname):
    return psycopg2.extensions.make_dsn(url, dbname=dbname)


@pytest.fixture(scope="session")
def server_url():
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    server, url = embedded.start(PROJECT / ".pgdata-test")
    yield url
    del server


@pytest.fixture(scope="session")
def database_url(server_url):
    name = f"ktpel_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = _with_dbname(server_url, name)
    conn = psycopg2.connect(url, cursor_factory=psycopg2.extras.RealDictCursor)
    migrate.migrate(conn, log=lambda line: None)
    conn.close()
    yield url
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="session")
def _emptying_sql(database_url):
    """One statement list that empties every table and restarts its identities.

    DELETE in foreign-key order (referencing tables first) rather than TRUNCATE: on a nearly empty
    database TRUNCATE costs about 0.2 s a test (new files for every table), DELETE almost nothing.
    """
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migration'"
        )
        tables = {row[0] for row in cur.fetchall()}
        cur.execute(
            """
            SELECT child.relname AS child, parent.relname AS parent
              FROM pg_constraint c
              JOIN pg_class child ON child.oid = c.conrelid
              JOIN pg_class parent ON parent.oid = c.confrelid
             WHERE c.contype = 'f' AND child.relnamespace = 'public'::regnamespace AND child.oid <> parent.oid
            """
        )
        referenced_by = {}
        for child, parent in cur.fetchall():
            referenced_by.setdefault(parent, set()).add(child)
        cur.execute(
            """
            SELECT pg_get_serial_sequence(format('%%I', c.relname), a.attname) AS seq
              FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attnum > 0
               AND c.relname = ANY(%s)
               AND pg_get_serial_sequence(format('%%I', c.relname), a.attname) IS NOT NULL
            """,
            (sorted(tables),),
        )
        sequences = sorted(row[0] for row in cur.fetchall())
    ordered, remaining = [], set(tables)
    while remaining:
        ready = sorted(t for t in remaining if not (referenced_by.get(t, set()) & remaining))
        if not ready:  # a cycle of foreign keys: let TRUNCATE sort it out
            return ["TRUNCATE " + ", ".join(f'"{t}"' for t in sorted(tables)) + " RESTART IDENTITY CASCADE"]
        ordered += ready
        remaining -= set(ready)
    return [f'DELETE FROM "{t}"' for t in ordered] + [f"SELECT setval('{seq}', 1, false)" for seq in sequences]


@pytest.fixture
def db(database_url, _emptying_sql):
    """A connection to the test database, which is emptied before each test."""
    conn = psycopg2.connect(database_url, cursor_factory=psycopg2.extras.RealDictCursor)
    with conn, conn.cursor() as cur:
        cur.execute("; ".join(_emptying_sql))
    yield conn
    conn.close()


@pytest.fixture
def make_app(db, database_url):
    apps = []

    def make(**overrides):
        settings = Settings(database_url=database_url, **overrides)
        app = create_app(settings)
        app.config["TESTING"] = True
        app.test_client_class = ContractClient
        apps.append(app)
        return app

    yield make
    for app in apps:
        for pool in app.extensions["ktpel_pools"].values():
            pool.closeall()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_key(db):
    """Create an API key the way `keys create` does; returns the Authorization header."""

    def make(role, *scopes, name=None):
        key_id, token, token_hash = new_token()
        with db, db.cursor():
            keys.create_key(db, key_id=key_id, name=name or f"test {role}", role=role, scopes=scopes,
                            token_hash=token_hash)
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
def admin(make_key):
    return make_key("admin")


@pytest.fixture
def reader(make_key):
    return make_key("reader")


def count_rows(conn, table):
    with conn, conn.cursor() as cur:
        cur.execute(f'SELECT count(*) AS n FROM "{table}"')
        return cur.fetchone()["n"]
