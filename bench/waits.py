"""What the database's sessions wait on while a scenario runs: pg_stat_activity, sampled.

A profile of the workers shows where their CPU goes; it cannot show a POST that waits on
another's lock or on the disk. Sampling pg_stat_activity every few milliseconds can: each
sample counts the service's sessions of the scratch database that are running a statement
(or sit in an open transaction) by what they wait on, and the averages over the samples say
how many sessions were, at any moment, in each state.
"""
import collections
import threading
import time

import psycopg2

_SESSIONS = """
    SELECT CASE WHEN state = 'active' THEN coalesce(wait_event_type || ':' || wait_event, 'running (CPU)')
                ELSE 'in a transaction, the worker''s turn' END
      FROM pg_stat_activity
     WHERE datname = %(database)s AND application_name = 'ktpel-coverage' AND pid <> pg_backend_pid()
       AND state IN ('active', 'idle in transaction')
"""


class Sampling:
    """Samples in a thread of its own from the start of the block to its end; averages() after.

    A sampling query that fails ends the block with its error, so that a part of the run is
    never reported as the whole.
    """

    def __init__(self, url, database_name, *, interval=0.005):
        self._url, self._database, self._interval = url, database_name, interval
        self._counts = collections.Counter()
        self._samples = 0
        self._error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self):
        self._conn = psycopg2.connect(self._url)
        self._conn.autocommit = True
        self._thread.start()
        return self

    def __exit__(self, exc_type, *exc_info):
        self._stop.set()
        self._thread.join()
        self._conn.close()
        if self._error is not None and exc_type is None:
            raise RuntimeError("sampling pg_stat_activity failed") from self._error
        return False

    def _sample(self):
        try:
            with self._conn.cursor() as cur:
                while not self._stop.is_set():
                    cur.execute(_SESSIONS, {"database": self._database})
                    self._counts.update(state for (state,) in cur.fetchall())
                    self._samples += 1
                    time.sleep(self._interval)
        except psycopg2.Error as exc:
            self._error = exc

    def averages(self):
        """{state: sessions in it on average}, the most common first."""
        return {state: n / self._samples for state, n in self._counts.most_common()} if self._samples else {}


def summary(averages, top=5):
    return "; ".join(f"{state} {n:.2f}" for state, n in list(averages.items())[:top]) or "none sampled"
