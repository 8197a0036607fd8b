"""ktpel-coverage migrate: in order, once each, checksummed, safe when several instances start at once."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service import migrate

from .conftest import PROJECT
from .scratch import connect, fetch, scratch_database

CLI = Path(sys.executable).with_name("ktpel-coverage")
FILES = sorted(p.name for p in migrate.MIGRATIONS_DIR.glob("*.sql"))


@pytest.fixture
def fresh_url(server_url):
    with scratch_database(server_url) as url:
        yield url


def run_migrate(url):
    conn = connect(url)
    lines = []
    try:
        return migrate.migrate(conn, log=lines.append), lines
    finally:
        conn.close()


def cli(url, *args):
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run([str(CLI), *args], env=env, cwd=PROJECT, capture_output=True, text=True, timeout=60)


def test_migrate_applies_every_file_in_order_then_does_nothing_the_second_time(fresh_url):
    done, _ = run_migrate(fresh_url)
    assert done == FILES
    recorded = fetch(fresh_url, "SELECT version, name, checksum, applied_at FROM schema_migration ORDER BY version")
    assert [r["name"] for r in recorded] == FILES
    assert [r["checksum"] for r in recorded] == [m.checksum for m in migrate.available()]

    again, lines = run_migrate(fresh_url)
    assert again == []
    assert lines == ["nothing to migrate"]
    assert fetch(fresh_url, "SELECT version, name, checksum, applied_at FROM schema_migration ORDER BY version") \
        == recorded
    conn = connect(fresh_url)
    try:
        assert migrate.pending(conn) == []
    finally:
        conn.close()


def test_two_processes_migrating_a_fresh_database_at_once_both_succeed_and_apply_it_once(fresh_url):
    env = {**os.environ, "DATABASE_URL": fresh_url}
    holder = connect(fresh_url)
    holder.autocommit = True
    try:
        with holder.cursor() as cur:
            # Hold the migration lock so that both processes are waiting on it, then let them go together.
            cur.execute("SELECT pg_advisory_lock(%s)", (migrate._LOCK_KEY,))
            runs = [subprocess.Popen([str(CLI), "migrate"], env=env, cwd=PROJECT, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True) for _ in range(2)]
            waiting, deadline = 0, time.monotonic() + 30
            while waiting < 2 and time.monotonic() < deadline and all(run.poll() is None for run in runs):
                time.sleep(0.05)
                cur.execute("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                waiting = cur.fetchone()["n"]
            cur.execute("SELECT pg_advisory_unlock(%s)", (migrate._LOCK_KEY,))
    finally:
        holder.close()
    outcomes = [(run.wait(timeout=60), run.stderr.read()) for run in runs]
    for run in runs:
        run.stdout.close()
        run.stderr.close()
    assert waiting == 2, f"both processes should have waited for the migration lock: {outcomes}"
    assert [code for code, _ in outcomes] == [0, 0], outcomes
    applied_lines = [line for _, err in outcomes for line in err.splitlines() if line.startswith("applied ")]
    assert sorted(applied_lines) == [f"applied {name}" for name in FILES]
    assert sum("nothing to migrate" in err for _, err in outcomes) == 1
    rows = fetch(fresh_url, "SELECT name FROM schema_migration ORDER BY version")
    assert [r["name"] for r in rows] == FILES


def test_an_applied_migration_that_was_edited_is_refused_with_a_clear_message(fresh_url):
    run_migrate(fresh_url)
    fetch(fresh_url, "UPDATE schema_migration SET checksum = 'edited' WHERE version = 1")
    conn = connect(fresh_url)
    try:
        with pytest.raises(migrate.MigrationError, match="0001_registry.sql was edited after it was applied"):
            migrate.migrate(conn, log=lambda line: None)
        with pytest.raises(migrate.MigrationError):
            migrate.pending(conn)
    finally:
        conn.close()
    result = cli(fresh_url, "migrate")
    assert result.returncode != 0
    assert "0001_registry.sql was edited after it was applied; add a new migration instead" in result.stderr
    assert "Traceback" not in result.stderr
    refused = cli(fresh_url, "keys", "list")
    assert refused.returncode != 0 and "was edited" in refused.stderr


def test_a_database_ahead_of_the_code_is_refused(fresh_url):
    run_migrate(fresh_url)
    fetch(fresh_url, "INSERT INTO schema_migration (version, name, checksum) VALUES (9999, '9999_future.sql', 'x')")
    conn = connect(fresh_url)
    try:
        with pytest.raises(migrate.MigrationError, match="9999_future.sql, which this code does not know"):
            migrate.migrate(conn, log=lambda line: None)
    finally:
        conn.close()


def test_a_failing_migration_is_rolled_back_and_the_ones_before_it_stay(fresh_url, tmp_path, monkeypatch):
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE first_table (id int);")
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE second_table (id int); SELECT no_such_column;")
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", tmp_path)
    conn = connect(fresh_url)
    try:
        with pytest.raises(Exception, match="no_such_column"):
            migrate.migrate(conn, log=lambda line: None)
    finally:
        conn.close()
    assert [r["name"] for r in fetch(fresh_url, "SELECT name FROM schema_migration")] == ["0001_first.sql"]
    tables = {r["t"] for r in fetch(fresh_url, "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public'")}
    assert "first_table" in tables and "second_table" not in tables
    # The advisory lock was released: another migrate is not blocked.
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE second_table (id int);")
    assert run_migrate(fresh_url)[0] == ["0002_broken.sql"]


def test_a_misnamed_migration_file_is_refused(tmp_path, monkeypatch):
    (tmp_path / "1_first.sql").write_text("SELECT 1;")
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", tmp_path)
    with pytest.raises(migrate.MigrationError, match="not named NNNN_name.sql"):
        migrate.available()


def test_the_schema_enforces_codes_kinds_counts_and_target_bounds(fresh_url):
    import psycopg2

    run_migrate(fresh_url)
    fetch(fresh_url, "INSERT INTO province (code, name) VALUES ('62', 'Kalimantan Tengah')")
    refused = [
        "INSERT INTO province (code, name) VALUES ('6', 'x')",
        "INSERT INTO province (code, name) VALUES (E'62\\n', 'x')",
        "INSERT INTO regency (code, province_code, name, kind) VALUES ('63.01', '62', 'x', 'kota')",
        "INSERT INTO regency (code, province_code, name, kind) VALUES ('62.1', '62', 'x', 'kota')",
        "INSERT INTO regency (code, province_code, name, kind) VALUES ('62.01', '62', 'x', 'desa')",
        "INSERT INTO national_target (effective_from, target_percent) VALUES ('2016-01-01', 0)",
        "INSERT INTO national_target (effective_from, target_percent) VALUES ('2016-01-01', 100.01)",
    ]
    for sql in refused:
        with pytest.raises(psycopg2.Error):
            fetch(fresh_url, sql)
    fetch(fresh_url, "INSERT INTO regency (code, province_code, name, kind) VALUES ('62.01', '62', 'x', 'kota')")
    with pytest.raises(psycopg2.Error):
        fetch(fresh_url, "INSERT INTO eligible_population (regency_code, effective_from, count) "
                         "VALUES ('62.01', '2016-01-01', 0)")
    # numeric(5,2) keeps two decimals: a third is not stored silently as something else.
    fetch(fresh_url, "INSERT INTO national_target (effective_from, target_percent) VALUES ('2016-01-01', 95.5)")
    assert fetch(fresh_url, "SELECT target_percent::text AS t FROM national_target")[0]["t"] == "95.50"
