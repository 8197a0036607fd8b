"""bench/waits.py: what the service's database sessions wait on, sampled from pg_stat_activity."""
import threading
import time

import psycopg2
import pytest

from bench import waits


def _session(url):
    conn = psycopg2.connect(url, application_name="ktpel-coverage")
    conn.autocommit = True
    return conn


def _until_waiting(conn, pid, timeout=10):
    """Return once the session `pid` waits on a lock (its statement has reached it)."""
    deadline = time.monotonic() + timeout
    with conn.cursor() as cur:
        while time.monotonic() < deadline:
            cur.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,))
            if cur.fetchone() == ("Lock",):
                return
            time.sleep(0.01)
    raise AssertionError(f"session {pid} never waited on the lock")


def test_a_session_waiting_on_a_lock_and_one_holding_it_open_are_told_apart(database_url):
    holder, waiter = _session(database_url), _session(database_url)
    database = holder.info.dbname
    try:
        with holder.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT pg_advisory_xact_lock(62, 9)")
        blocked = threading.Thread(target=lambda: waiter.cursor().execute("SELECT pg_advisory_xact_lock(62, 9)"))
        blocked.start()
        _until_waiting(holder, waiter.info.backend_pid)
        with waits.Sampling(database_url, database, interval=0.01) as sampling:
            time.sleep(0.3)
        with holder.cursor() as cur:
            cur.execute("COMMIT")
        blocked.join(5)
    finally:
        holder.close()
        waiter.close()

    averages = sampling.averages()
    assert averages["Lock:advisory"] == 1.0
    assert averages["in a transaction, the worker's turn"] == 1.0
    assert set(averages) == {"Lock:advisory", "in a transaction, the worker's turn"}
    assert sorted(waits.summary(averages).split("; ")) == [
        "Lock:advisory 1.00", "in a transaction, the worker's turn 1.00",
    ]


def test_only_the_services_sessions_of_the_named_database_are_counted(database_url):
    ours, other = _session(database_url), psycopg2.connect(database_url, application_name="someone else")
    other.autocommit = True
    database = ours.info.dbname
    try:
        for conn in (ours, other):  # both hold a transaction open
            with conn.cursor() as cur:
                cur.execute("BEGIN")
                cur.execute("SELECT 1")
        with waits.Sampling(database_url, database, interval=0.01) as here:
            time.sleep(0.1)
        with waits.Sampling(database_url, database + "_elsewhere", interval=0.01) as elsewhere:
            time.sleep(0.1)
    finally:
        ours.close()
        other.close()

    assert here.averages() == {"in a transaction, the worker's turn": 1.0}
    assert elsewhere.averages() == {}
    assert waits.summary(elsewhere.averages()) == "none sampled"


def test_a_sampling_query_that_fails_ends_the_block_with_its_error(database_url):
    sampling = waits.Sampling(database_url, "postgres", interval=0.01)
    with pytest.raises(RuntimeError, match="sampling pg_stat_activity failed"), sampling:
        killer = _session(database_url)  # the sampler's own session ends under it
        try:
            with killer.cursor() as cur:
                cur.execute("SELECT pg_terminate_backend(%s)", (sampling._conn.info.backend_pid,))
        finally:
            killer.close()
        time.sleep(0.2)
