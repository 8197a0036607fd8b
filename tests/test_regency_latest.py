"""regency_latest (migrations 0005, 0006) stays what submission says, whatever is written, corrected or retracted."""
import datetime as dt
import threading
import time

import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .coverage_world import put_province, put_regency

REGENCIES = ("62.01", "62.02", "62.03")
START = dt.date(2016, 1, 1)

rows = st.tuples(st.sampled_from(REGENCIES), st.integers(0, 6).map(lambda n: START + dt.timedelta(days=n)),
                 st.integers(0, 1000), st.booleans())
# One statement each: rows inserted together (a batch is one statement), a retraction, an
# operator's deletion, or an operator moving a row to another regency.
steps = st.one_of(
    st.tuples(st.just("insert"), st.lists(rows, min_size=1, max_size=5)),
    st.tuples(st.just("retract"), st.integers(0, 100)),
    st.tuples(st.just("delete"), st.integers(0, 100)),
    st.tuples(st.just("move"), st.integers(0, 100), st.sampled_from(REGENCIES)),
)


def latest_in_table(db):
    with db.cursor() as cur:
        cur.execute("SELECT regency_code, as_of, submission_id, recorded FROM regency_latest ORDER BY regency_code")
        return cur.fetchall()


def latest_in_submissions(db):
    """The greatest (as_of, id) not retracted per regency: the order every coverage read uses."""
    with db.cursor() as cur:
        cur.execute(
            """
            SELECT DISTINCT ON (regency_code) regency_code, as_of, id AS submission_id, recorded
              FROM submission WHERE retracted_at IS NULL
             ORDER BY regency_code, as_of DESC, id DESC
            """
        )
        return cur.fetchall()


def nth_row(cur, n, *, not_retracted=False):
    cur.execute(f"SELECT id FROM submission {'WHERE retracted_at IS NULL' if not_retracted else ''} ORDER BY id")
    ids = [row["id"] for row in cur.fetchall()]
    return ids[n % len(ids)] if ids else None


def run(db, step):
    with db, db.cursor() as cur:
        if step[0] == "insert":
            cur.execute(
                "INSERT INTO submission (regency_code, as_of, recorded, retracted_at, retraction_reason) "
                "SELECT * FROM unnest(%s::text[], %s::date[], %s::int[], %s::timestamptz[], %s::text[])",
                ([r[0] for r in step[1]], [r[1] for r in step[1]], [r[2] for r in step[1]],
                 [dt.datetime.now(dt.UTC) if r[3] else None for r in step[1]],
                 ["test" if r[3] else None for r in step[1]]),
            )
        elif step[0] == "retract" and (target := nth_row(cur, step[1], not_retracted=True)) is not None:
            cur.execute("UPDATE submission SET retracted_at = now(), retraction_reason = 'test' WHERE id = %s",
                        (target,))
        elif step[0] == "delete" and (target := nth_row(cur, step[1])) is not None:
            cur.execute("DELETE FROM submission WHERE id = %s", (target,))
        elif step[0] == "move" and (target := nth_row(cur, step[1])) is not None:
            cur.execute("UPDATE submission SET regency_code = %s WHERE id = %s", (step[2], target))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.lists(steps, min_size=1, max_size=12))
def test_it_is_the_latest_effective_submission_after_every_statement(db, history):
    with db, db.cursor() as cur:
        cur.execute("DELETE FROM submission_change")
        cur.execute("DELETE FROM submission")
    if not _registry_loaded(db):
        put_province(db, "62")
        for code in REGENCIES:
            put_regency(db, code)

    for step in history:
        run(db, step)
        assert latest_in_table(db) == latest_in_submissions(db), step


def _registry_loaded(db):
    with db.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM regency")
        return cur.fetchone()["n"] == len(REGENCIES)


def test_truncating_submissions_empties_it(db):
    put_province(db, "62")
    put_regency(db, "62.01")
    with db, db.cursor() as cur:
        cur.execute("INSERT INTO submission (regency_code, as_of, recorded) VALUES ('62.01', '2016-06-30', 10)")
    assert len(latest_in_table(db)) == 1

    with db, db.cursor() as cur:
        cur.execute("TRUNCATE submission CASCADE")

    assert latest_in_table(db) == []


def backend_waiting(db, pid):
    with db.cursor() as cur:
        cur.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,))
        row = cur.fetchone()
    db.rollback()
    return row is not None and row["wait_event_type"] == "Lock"


@pytest.mark.parametrize("operator_edit", [
    "DELETE FROM submission WHERE id = %(latest)s",
    "INSERT INTO submission (regency_code, as_of, recorded) VALUES ('62.01', '2016-01-09', 90)",
    "UPDATE submission SET recorded = 77 WHERE id = %(latest)s",
])
def test_an_operator_edit_beside_a_retraction_of_the_same_regency_leaves_the_latest_row(db, database_url,
                                                                                       operator_edit):
    """Two transactions change one regency's latest at once: the second waits for the first, reads what it wrote."""
    put_province(db, "62")
    put_regency(db, "62.01")
    with db, db.cursor() as cur:
        cur.execute("INSERT INTO submission (regency_code, as_of, recorded) VALUES "
                    "('62.01', '2016-01-01', 10), ('62.01', '2016-01-02', 20), ('62.01', '2016-01-03', 30) "
                    "RETURNING id")
        first, _, latest = [row["id"] for row in cur.fetchall()]
    operator = psycopg2.connect(database_url)
    api = psycopg2.connect(database_url)
    try:
        with operator.cursor() as cur:  # psql: no advisory lock of its own, the trigger takes it
            cur.execute(operator_edit, {"latest": latest})
        with api.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            api_pid = cur.fetchone()[0]
        failure = []

        def retract_through_the_api():  # as submissions/routes.py does: the regency's lock, then the row
            try:
                with api, api.cursor() as cur:
                    cur.execute("SELECT pg_advisory_xact_lock(622016, hashtext('62.01'))")
                    cur.execute("UPDATE submission SET retracted_at = now(), retraction_reason = 'test' "
                                "WHERE id = %s", (first,))
            except psycopg2.Error as exc:
                failure.append(exc)

        retraction = threading.Thread(target=retract_through_the_api)
        retraction.start()
        deadline = time.monotonic() + 10
        while not backend_waiting(db, api_pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert backend_waiting(db, api_pid), "the retraction should wait for the operator's transaction"
        operator.commit()
        retraction.join(10)

        assert failure == []
        assert latest_in_table(db) == latest_in_submissions(db)
    finally:
        operator.close()
        api.close()
