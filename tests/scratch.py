"""Scratch databases on the test server, for tests that need a database of their own (unmigrated, edited...)."""
import os
import secrets
from contextlib import contextmanager

import psycopg2
import psycopg2.extensions
import psycopg2.extras


@contextmanager
def scratch_database(server_url):
    """A new, empty database on the test server; dropped afterwards whatever happens. Yields its URL."""
    name = f"ktpel_scratch_{os.getpid()}_{secrets.token_hex(3)}"
    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield psycopg2.extensions.make_dsn(server_url, dbname=name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def connect(url):
    return psycopg2.connect(url, cursor_factory=psycopg2.extras.RealDictCursor)


def fetch(url, sql, params=None):
    """Rows of one query on a database other than the per-run one (tests only)."""
    conn = connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()
