"""EXPLAIN ANALYZE of whatever SQL an endpoint runs, captured by asking the app itself (no SQL copied here)."""
from contextlib import contextmanager

import psycopg2.sql

from service import create_app
from service.config import Settings
from service.db import DictRowCursor

from .profiling import PROFILES


class ExplainingCursor(DictRowCursor):
    """Runs EXPLAIN (ANALYZE, BUFFERS) before each read statement and keeps the plan."""

    plans = []

    def execute(self, query, vars=None):
        prepared = getattr(query, "text", None)  # db.Prepared: EXECUTE name(values), prepared first
        if isinstance(query, psycopg2.sql.Composable):
            query = query.as_string(self.connection)
        text = query if isinstance(query, str) else query.decode()
        if text.lstrip().upper().startswith(("SELECT", "WITH", "EXECUTE")):
            statement = self.mogrify(query, vars).decode() + (f"   prepared as: {prepared}" if prepared else "")
            super().execute("EXPLAIN (ANALYZE, BUFFERS) " + text, vars)
            plan = "\n".join(row["QUERY PLAN"] for row in self.fetchall())
            ExplainingCursor.plans.append((statement, plan))
        return super().execute(query, vars)


@contextmanager
def client_with_cursor(url, cursor_class, **settings):
    """A test client of a fresh app whose pools give out cursors of cursor_class (its request lines unlogged:
    they would fill the bench's output)."""
    app = create_app(Settings(database_url=url, **{"log_level": "WARNING", **settings}))
    for pool in app.extensions["ktpel_pools"].values():
        pool._kwargs["cursor_factory"] = cursor_class  # the bench's only reach into the pool
    try:
        yield app.test_client()
    finally:
        for pool in app.extensions["ktpel_pools"].values():
            pool.closeall()


def explain(url, requests):
    """{name: text of every statement with its plan} for each (name, path) served by a fresh app."""
    out = {}
    with client_with_cursor(url, ExplainingCursor, public_read=True) as client:
        for name, path in requests:
            # Warm the caches, and settle the plans of prepared statements: PostgreSQL plans the first
            # five executions for their values, then may keep one generic plan, as in the measured runs.
            for _ in range(6):
                client.get(path)
            ExplainingCursor.plans = []
            # The answer computed, not one kept (service/coverage/kept.py), whose statement runs no node.
            client.application.extensions["ktpel_kept_answers"].clear()
            answer = client.get(path)
            parts = [f"GET {path} -> {answer.status_code}"]
            for statement, plan in ExplainingCursor.plans:
                parts += ["", "  " + " ".join(statement.split())[:600], "", plan]
            out[name] = "\n".join(parts)
    PROFILES.mkdir(exist_ok=True)
    for name, text in out.items():
        (PROFILES / f"explain-{name}.txt").write_text(text + "\n")
    return out


def execution_times(text):
    """The 'Execution Time' of each plan in an explain() text, in ms."""
    return [float(line.split(":")[1].split()[0]) for line in text.splitlines() if line.startswith("Execution Time")]
