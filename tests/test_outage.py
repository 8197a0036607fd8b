"""PostgreSQL stops under a running gunicorn: bounded 503s, /healthz alive, recovery without a restart."""
import re
import time

import psycopg2
import psycopg2.extras
import pytest

from service import create_app
from service.auth import new_token
from service.config import Settings
from service.keys import queries as keys

from .dedicated_postgres import DedicatedPostgres
from .gunicorn_process import Served

# Routes that must answer whatever the database does; every other route needs it.
NO_DATABASE = {"/healthz", "/metrics", "/openapi.yaml", "/docs", "/docs/assets/<name>", "/static/<path:filename>"}
SAMPLE_PATH_VALUES = {"code": "62", "effective_from": "2016-01-01", "id": "1", "filename": "x", "name": "docs.js"}
CONNECT_TIMEOUT_SECONDS = 2
ANSWER_WITHIN_SECONDS = CONNECT_TIMEOUT_SECONDS + 3


@pytest.fixture
def postgres():
    server = DedicatedPostgres()
    try:
        server.migrate()
        yield server
    finally:
        server.close()


def admin_header(url):
    key_id, token, token_hash = new_token()
    conn = psycopg2.connect(url, cursor_factory=psycopg2.extras.RealDictCursor)
    with conn, conn.cursor():
        keys.create_key(conn, key_id=key_id, name="outage test", role="admin", scopes=(), token_hash=token_hash)
    conn.close()
    return {"Authorization": f"Bearer {token}"}


def every_operation(url):
    """(method, path) for every route of the app, path parameters filled with plausible values."""
    app = create_app(Settings(database_url=url))  # the pool connects lazily: nothing is opened here
    found = []
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: SAMPLE_PATH_VALUES.get(m.group(1), "1"), rule.rule)
        found += [(method, rule.rule, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return found


def timed(served, method, path, headers):
    started = time.monotonic()
    body = {} if method in ("PUT", "POST") else None
    answer = served.request(method, path, body=body, headers=headers, timeout=ANSWER_WITHIN_SECONDS + 5)
    return answer, time.monotonic() - started


@pytest.mark.slow
def test_database_outage_answers_503_with_retry_after_and_recovers_without_a_restart(postgres):
    admin = admin_header(postgres.url)
    operations = every_operation(postgres.url)
    assert any(rule.startswith("/v1/") for _, rule, _ in operations)
    statuses = []

    with Served(postgres.url, workers=2, connect_timeout_seconds=CONNECT_TIMEOUT_SECONDS,
                pool_timeout_seconds=2) as served:
        pids = served.worker_pids()
        # Fill both workers' pools with connections that the restart will leave dead.
        for _ in range(10):
            answer = served.get("/v1/provinces", headers=admin)
            statuses.append(answer.status)
            assert answer.status == 200

        postgres.stop()
        for _ in range(2):  # twice: each worker, and each stale pooled connection, gets its turn
            for method, rule, path in operations:
                answer, seconds = timed(served, method, path, admin)
                statuses.append(answer.status)
                assert seconds < ANSWER_WITHIN_SECONDS, f"{method} {path} took {seconds:.1f}s"
                if rule in NO_DATABASE:
                    assert answer.status < 500, f"{method} {path} needs no database"
                    continue
                assert answer.status == 503, f"{method} {path}: {answer.status} {answer.body[:200]}"
                assert answer.headers["Content-Type"] == "application/problem+json"
                assert int(answer.headers["Retry-After"]) > 0
                assert answer.json()["type"] == "urn:ktpel-coverage:problem:database-unavailable"
        assert served.get("/readyz").status == 503
        assert served.get("/healthz").status == 200

        postgres.start()
        deadline = time.monotonic() + 30
        while served.get("/readyz").status != 200:
            assert time.monotonic() < deadline, "the service did not recover within 30 s"
            time.sleep(0.2)
        # Every pooled connection from before the outage is dead: none may surface as a 503 now.
        after = [served.get("/v1/provinces", headers=admin).status for _ in range(30)]
        created = served.request("PUT", "/v1/provinces/62", body={"name": "Kalimantan Tengah"}, headers=admin)
        statuses += after + [created.status]
        # A restart while no request runs: the pools hold connections that died while idle.
        postgres.stop()
        postgres.start()
        after_quiet_restart = [served.get("/v1/provinces", headers=admin).status for _ in range(30)]
        statuses += after_quiet_restart
        assert served.worker_pids() == pids, "a worker was restarted"

    assert after == [200] * 30
    assert created.status == 201
    assert after_quiet_restart == [200] * 30
    assert 500 not in statuses


def test_the_pool_keeps_connections_open_between_transactions(app):
    pool = app.extensions["ktpel_pools"]["write"]
    backends = set()
    for _ in range(3):
        with pool.transaction() as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid() AS pid")
            backends.add(cur.fetchone()["pid"])
    assert len(backends) == 1
    assert pool.in_use == 0


def test_a_connection_closed_by_the_server_while_idle_is_replaced_not_answered_503(app, db):
    pool = app.extensions["ktpel_pools"]["write"]
    with pool.transaction() as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid() AS pid")
        first = cur.fetchone()["pid"]
    with db, db.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%(pid)s, 5000)", {"pid": first})  # waits until it is gone
    with pool.transaction() as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid() AS pid")
        second = cur.fetchone()["pid"]
    assert second != first


def test_every_operation_that_needs_the_database_documents_its_503(app):
    import yaml

    from .contract import SPEC

    spec = yaml.safe_load(SPEC.read_text())
    undocumented = [
        (method, path) for path, item in spec["paths"].items() for method, operation in item.items()
        if method in ("get", "put", "post", "delete", "patch")
        and re.sub(r"{([^}]+)}", r"<\1>", path) not in NO_DATABASE
        and "503" not in operation.get("responses", {})
    ]
    assert undocumented == []


def test_no_free_connection_in_time_answers_503_instead_of_waiting(make_app, reader):
    app = make_app(pool_max=1, pool_timeout_seconds=0.5)
    pool = app.extensions["ktpel_pools"]["write"]
    held = pool.getconn()  # another request holds the only connection
    try:
        started = time.monotonic()
        response = app.test_client().get("/v1/provinces", headers=reader)
        seconds = time.monotonic() - started
    finally:
        pool.putconn(held)

    assert response.status_code == 503
    assert response.json["type"] == "urn:ktpel-coverage:problem:database-unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert 0.4 < seconds < 2
    assert app.test_client().get("/v1/provinces", headers=reader).status_code == 200
