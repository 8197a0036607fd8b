"""The stack's floor for an answer: the service's own SQL, sent by a bare Flask app under gunicorn.

pgbench (bench/sql_floor.py) shows what PostgreSQL needs for an answer with no Python in the way;
healthz shows what gunicorn and Flask cost with no database. Neither shows what the stack itself
costs for an answer that needs the database: the round trips through psycopg2, with the GIL let
go and taken back, the rows read into Python and written out as JSON. This app does only that,
with none of the service's code: for each province it sends the query strings the service sent
for its answer (recorded by bench/sql_floor.py) and answers the last one's rows as JSON; for a
POST, the query strings of a POST that created a submission, with the body's count and the id
the standing statement gave. No validation, no coverage rules, no logs, no metrics, no ETag. It
runs with the service's gunicorn settings (workers, threads, worker class, keep-alive, and new
connections going to the worker holding fewest), one connection per thread.

What it reaches beside the service's healthz, in the same run, is about the most any code of
ours could reach for these answers with this SQL on this stack and this machine.
"""
import json
import os
import sys
import threading
from pathlib import Path

import psycopg2
from flask import Flask, Response, request
from gunicorn.app.base import BaseApplication

from service.config import Settings
from service.server import free_the_connection_slot, gunicorn_options

SPEC_ENV = "KTPEL_STACK_FLOOR_SPEC"
JSON = "application/json"


def _rows(cur):
    names = [column.name for column in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def create_app(spec):
    """spec: {"url", "prepares": [PREPARE ...], "provinces": {code: [query string, ...]},
    "submissions": {regency: [query string, ..., the writes with :count and :new_id]}} (write_spec)."""
    app = Flask(__name__)
    connections = threading.local()

    def connection():
        conn = getattr(connections, "conn", None)
        if conn is None:
            conn = psycopg2.connect(spec["url"])
            conn.autocommit = True  # as the service's reads; its POST sends BEGIN itself
            with conn.cursor() as cur:
                for prepare in spec["prepares"]:
                    cur.execute(prepare)
            connections.conn = conn
        return conn

    @app.get("/healthz")
    def healthz():
        return Response(b'{"status":"ok"}', mimetype=JSON)

    @app.get("/v1/provinces/<code>/coverage")
    def province(code):
        with connection().cursor() as cur:
            for statement in spec["provinces"][code]:
                cur.execute(statement)
            rows = _rows(cur)
        return Response(json.dumps(rows, default=str, separators=(",", ":")).encode(), mimetype=JSON)

    @app.post("/v1/submissions")
    def submission():
        body = request.get_json()
        *statements, writes = spec["submissions"][body["regency_code"]]
        with connection().cursor() as cur:
            for statement in statements:
                cur.execute(statement)
            new_id = _rows(cur)[0]["new_id"]  # the standing statement's, the last before the writes
            cur.execute(writes.replace(":count", str(int(body["recorded"]))).replace(":new_id", str(new_id)))
        answer = {"id": str(new_id), "regency_code": body["regency_code"], "recorded": body["recorded"]}
        return Response(json.dumps(answer).encode(), status=201, mimetype=JSON)

    return app


class StackFloorServer(BaseApplication):
    """gunicorn with the service's own settings for the worker model; the bare app in each worker."""

    def __init__(self, spec):
        self.spec = spec
        super().__init__()

    def load_config(self):
        options = gunicorn_options(Settings.from_environ())  # HOST, PORT, WEB_CONCURRENCY, THREADS as the service
        # pre_fork: each worker's slot in the connection counts, so new connections go to the worker
        # holding fewest, as the service's do (server.ThreadWorker).
        for name in ("bind", "workers", "worker_class", "threads", "keepalive", "timeout", "pre_fork"):
            self.cfg.set(name, options[name])
        self.cfg.set("child_exit", free_the_connection_slot)
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)

    def load(self):
        return create_app(self.spec)


def write_spec(path, *, url, prepares, provinces, submissions):
    """The spec file create_app() reads: the database URL, the PREPAREs and the query strings to send."""
    Path(path).write_text(json.dumps({"url": url, "prepares": list(prepares), "provinces": provinces,
                                      "submissions": {code: list(sent) for code, sent in submissions.items()}}))


if __name__ == "__main__":
    StackFloorServer(json.loads(Path(os.environ[SPEC_ENV]).read_text())).run()
    sys.exit(0)
