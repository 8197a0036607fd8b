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
def _tables(database_url):
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migration'"
        )
        tables = [row[0] for row in cur.fetchall()]
        cur.execute("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
        sequences = [row[0] for row in cur.fetchall()]
    return tables, sequences


@pytest.fixture
def db(database_url, _tables):
    """A connection to the test database, which is emptied before each test.

    DELETE, not TRUNCATE: truncating a dozen tables costs ~0.4 s of file work per test, while
    deleting the few rows a test leaves takes a millisecond. Foreign keys are not checked while
    emptying (session_replication_role), and identities restart at 1 as after a fresh migrate.
    """
    tables, sequences = _tables
    conn = psycopg2.connect(database_url, cursor_factory=psycopg2.extras.RealDictCursor)
    with conn, conn.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")
        for table in tables:
            cur.execute(f'DELETE FROM "{table}"')
        for sequence in sequences:
            cur.execute(f"SELECT setval('\"{sequence}\"', 1, false)")
    yield conn
    conn.close()


@pytest.fixture
def make_app(db, database_url):
    apps = []

    def make(**overrides):
        settings = Settings(**{"database_url": database_url, **overrides})
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
