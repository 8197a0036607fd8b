"""A gunicorn worker killed with SIGKILL in the middle of a submission load loses no answered submission."""
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


def submit(served, headers, n):
    """One new submission: (status, (id, as_of, recorded)) with id None unless it was created."""
    as_of = FIRST_DAY + dt.timedelta(days=n)
    answer = served.request("POST", "/v1/submissions", headers=headers, timeout=30,
                            body={"regency_code": REGENCY, "as_of": as_of.isoformat(), "recorded": 10_000 + n})
    created_id = answer.json()["id"] if answer.status == 201 else None
    return answer.status, (created_id, as_of, 10_000 + n)


def stored(db):
    with db, db.cursor() as cur:
        cur.execute("SELECT id::text AS id, as_of, recorded FROM submission WHERE regency_code = %(regency)s",
                    {"regency": REGENCY})
        return {(row["id"], row["as_of"], row["recorded"]) for row in cur.fetchall()}


@pytest.mark.slow
def test_sigkill_of_a_worker_mid_load_loses_no_submission_answered_201(database_url, make_key, db):
    admin = make_key("admin")
    office = make_key("submitter", "62")
    answered, failures, lock = [], [], threading.Lock()
    with Served(database_url, workers=2, threads=4) as served:
        assert served.request("PUT", "/v1/provinces/62", body={"name": "Kalimantan Tengah"},
                              headers=admin).status == 201
        assert served.request("PUT", f"/v1/regencies/{REGENCY}", headers=admin,
                              body={"name": "Lamandau", "kind": "kabupaten", "province_code": "62"}).status == 201

        def load(first):
            for n in range(first, first + WRITES_PER_THREAD):
                try:
                    status, written = submit(served, office, n)
                except (OSError, http.client.HTTPException) as exc:  # the killed worker's: outcome unknown
                    with lock:
                        failures.append(exc)
                    continue
                with lock:
                    answered.append((status, written, time.monotonic()))

        threads = [threading.Thread(target=load, args=(i * WRITES_PER_THREAD,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(answered) < THREADS * WRITES_PER_THREAD // 4 and time.monotonic() < deadline:
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
    assert len(created) > THREADS * WRITES_PER_THREAD // 4
    assert created <= stored(db), "a submission answered 201 is missing from the database"
    assert any(at > killed_at for status, _, at in answered if status == 201), "nothing was served after the kill"
    assert victim not in workers_after and len(workers_after) == 2
    assert ready_after == 200
    # child_exit forgot the dead worker: the pool gauges add up the two live workers only.
    assert value(scrape, "ktpel_db_pool_connections_max", pool="write") == 2 * Settings().pool_max
