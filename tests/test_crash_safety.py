"""A gunicorn worker killed with SIGKILL in the middle of a write load loses no answered write."""
import datetime as dt
import http.client
import os
import signal
import threading
import time

import pytest

from service.config import Settings

from .gunicorn_process import Served
from .test_metrics import value

THREADS = 8
WRITES_PER_THREAD = 40
REGENCY = "62.09"
FIRST_DAY = dt.date(2012, 1, 1)


def write(served, headers, n):
    """One write that creates a resource: (status, the value stored under that key)."""
    day = FIRST_DAY + dt.timedelta(days=n)
    answer = served.request("PUT", f"/v1/regencies/{REGENCY}/eligible-population/{day}",
                            body={"count": 60_000 + n}, headers=headers, timeout=30)
    return answer.status, (day, 60_000 + n)


def stored(db):
    with db, db.cursor() as cur:
        cur.execute("SELECT effective_from, count FROM eligible_population WHERE regency_code = %s", (REGENCY,))
        return {(row["effective_from"], row["count"]) for row in cur.fetchall()}


@pytest.mark.slow
def test_sigkill_of_a_worker_mid_load_loses_no_write_answered_201(database_url, make_key, db):
    admin = make_key("admin")
    answered, failures, lock = [], [], threading.Lock()
    with Served(database_url, workers=2, threads=4) as served:
        assert served.request("PUT", "/v1/provinces/62", body={"name": "Kalimantan Tengah"},
                              headers=admin).status == 201
        assert served.request("PUT", f"/v1/regencies/{REGENCY}", headers=admin,
                              body={"name": "Lamandau", "kind": "kabupaten", "province_code": "62"}).status == 201

        def load(first):
            for n in range(first, first + WRITES_PER_THREAD):
                try:
                    status, written = write(served, admin, n)
                except (OSError, http.client.HTTPException) as exc:  # the killed worker's: outcome unknown
                    with lock:
                        failures.append(exc)
                    continue
                with lock:
                    answered.append((status, written, time.monotonic()))

        threads = [threading.Thread(target=load, args=(i * WRITES_PER_THREAD,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        while len(answered) < THREADS * WRITES_PER_THREAD // 4:
            time.sleep(0.01)
        victim = served.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        for thread in threads:
            thread.join(timeout=120)

        time.sleep(1)  # gunicorn replaces the worker
        workers_after = served.worker_pids()
        ready_after = served.get("/readyz").status
        scrape = served.get("/metrics").body.decode()

    created = {written for status, written, _ in answered if status == 201}
    assert {status for status, _, _ in answered} <= {201}, "only 201 (or a lost connection) is expected"
    assert created <= stored(db), "a write answered 201 is missing from the database"
    assert any(at > killed_at for status, _, at in answered if status == 201), "nothing was served after the kill"
    assert victim not in workers_after and len(workers_after) == 2
    assert ready_after == 200
    # child_exit forgot the dead worker: the pool gauges add up the two live workers only.
    assert value(scrape, "ktpel_db_pool_connections_max", pool="write") == 2 * Settings().pool_max
