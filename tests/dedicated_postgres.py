"""A PostgreSQL server of a test's own, which the test may stop and start (never the shared one)."""
import shutil
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg2
import psycopg2.extras

from service import migrate


class DedicatedPostgres:
    """initdb in a fresh temp folder (pgserver ships the binaries), listening on a Unix socket only."""

    def __init__(self):
        import pgserver
        from pgserver import _commands

        self._pg_ctl = _commands.pg_ctl
        self.pgdata = Path(tempfile.mkdtemp(prefix="ktpel-outage-"))
        self.server = pgserver.get_server(self.pgdata, cleanup_mode="delete")
        self.url = self.server.get_uri()
        self.socket_dir = parse_qs(urlsplit(self.url).query)["host"][0]

    def migrate(self):
        conn = psycopg2.connect(self.url, cursor_factory=psycopg2.extras.RealDictCursor)
        try:
            migrate.migrate(conn, log=lambda line: None)
        finally:
            conn.close()

    def stop(self):
        self._pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.server.system_user, timeout=30)

    def start(self):
        self._pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.pgdata / "log"), "start"],
                     pgdata=self.pgdata, user=self.server.system_user, timeout=30)

    def close(self):
        try:
            self.server.cleanup()
        finally:
            shutil.rmtree(self.pgdata, ignore_errors=True)
