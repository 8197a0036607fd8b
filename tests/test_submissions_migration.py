"""Migration 0003 on a database that already holds submissions: they enter the change feed, in order."""
import datetime as dt
import shutil

from service import migrate
from service.submissions import queries

from .scratch import connect, fetch, scratch_database


def test_submissions_stored_before_0003_enter_the_feed_and_new_ones_follow(server_url, tmp_path, monkeypatch):
    for name in ("0001_registry.sql", "0002_submissions.sql"):
        shutil.copy(migrate.MIGRATIONS_DIR / name, tmp_path / name)
    real_dir = migrate.MIGRATIONS_DIR
    with scratch_database(server_url) as url:
        conn = connect(url)
        try:
            monkeypatch.setattr(migrate, "MIGRATIONS_DIR", tmp_path)
            migrate.migrate(conn, log=lambda line: None)
            with conn, conn.cursor() as cur:
                cur.execute("INSERT INTO province (code, name) VALUES ('62', 'Kalimantan Tengah')")
                cur.execute("INSERT INTO regency (code, name, kind, province_code) VALUES "
                            "('62.09', 'Lamandau', 'kabupaten', '62'), ('62.71', 'Palangka Raya', 'kota', '62')")
                cur.execute("""
                    INSERT INTO submission (regency_code, as_of, recorded, received_at) VALUES
                      ('62.09', '2016-06-30', 10, '2016-07-01T00:00Z'),
                      ('62.71', '2016-06-30', 20, '2016-07-02T00:00Z'),
                      ('62.09', '2016-06-30', 11, '2016-07-03T00:00Z')
                """)
                cur.execute("UPDATE submission SET retracted_at = '2016-07-04T00:00Z', retraction_reason = 'x' "
                            "WHERE recorded = 11")
            monkeypatch.setattr(migrate, "MIGRATIONS_DIR", real_dir)
            assert "0003_submission_feed.sql" in migrate.migrate(conn, log=lambda line: None)
            conn.autocommit = False
            with conn:
                day = dt.date(2016, 7, 31)
                stored = queries.insert_submissions(
                    conn, items=[{"regency_code": "62.71", "as_of": day, "recorded": 30, "warnings": []}], key_id=None)
                queries.append_changes(conn, kind="created", changes=[("62.71", day, stored[("62.71", day)])])
        finally:
            conn.close()
        feed = fetch(url, "SELECT c.position, s.recorded, c.kind FROM submission_change c "
                          "JOIN submission s ON s.id = c.submission_id ORDER BY c.position")

    assert [(r["position"], r["recorded"], r["kind"]) for r in feed] == [
        (1, 10, "created"), (2, 20, "created"), (3, 11, "created"), (4, 11, "retracted"), (5, 30, "created"),
    ]
