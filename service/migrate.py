"""Apply the numbered SQL files in migrations/, in order, once each."""
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any fixed number: every instance that migrates takes the same advisory lock.
_LOCK_KEY = 7_311_201_6


class MigrationError(Exception):
    """The database and the migration files disagree; nothing was applied."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self):
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available():
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name} is not named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), path.name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a number")
    return found


_CREATE_VERSION_TABLE = """
    CREATE TABLE IF NOT EXISTS schema_migration (
        version     integer PRIMARY KEY,
        name        text NOT NULL,
        checksum    text NOT NULL,
        applied_at  timestamptz NOT NULL DEFAULT now()
    )
"""


def _applied(cur):
    cur.execute("SELECT to_regclass('schema_migration') IS NOT NULL AS present")
    if not cur.fetchone()["present"]:
        return {}
    cur.execute("SELECT version, name, checksum FROM schema_migration ORDER BY version")
    return {row["version"]: row for row in cur.fetchall()}


def _check(applied, files):
    by_version = {m.version: m for m in files}
    for version, row in applied.items():
        migration = by_version.get(version)
        if migration is None:
            raise MigrationError(f"the database has migration {row['name']}, which this code does not know")
        if migration.checksum != row["checksum"]:
            raise MigrationError(f"{migration.name} was edited after it was applied; add a new migration instead")


def pending(conn):
    """The migrations not yet applied; MigrationError when an applied one was edited."""
    files = available()
    with conn.cursor() as cur:
        applied = _applied(cur)
    conn.rollback()
    _check(applied, files)
    return [m for m in files if m.version not in applied]


def migrate(conn, log=print):
    """Apply pending migrations, each in its own transaction, under an advisory lock."""
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            cur.execute(_CREATE_VERSION_TABLE)
            files = available()
            applied = _applied(cur)
            _check(applied, files)
            done = []
            for migration in files:
                if migration.version in applied:
                    continue
                conn.autocommit = False
                with conn:
                    with conn.cursor() as tx:
                        tx.execute(migration.sql)
                        tx.execute(
                            "INSERT INTO schema_migration (version, name, checksum) VALUES (%s, %s, %s)",
                            (migration.version, migration.name, migration.checksum),
                        )
                conn.autocommit = True
                log(f"applied {migration.name}")
                done.append(migration.name)
            if not done:
                log("nothing to migrate")
            return done
        finally:
            conn.autocommit = True
            cur.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
