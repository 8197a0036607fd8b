"""A key the process has read before is checked in the request's first statement, not a round trip of its own.

Whatever way the check travels, a revoked key stops at once: these tests revoke (or edit) a key
between two requests of the same process, where the second one takes the carried path.
"""
import psycopg2.extensions
import pytest

from service.clock import today
from service.keys import queries as keys

from .conftest import count_rows
from .submissions_world import LAMANDAU, load_world
from .test_logs import request_lines
from .wire_count import QueryCounter

STORED = ("submission", "submission_change", "audit_event", "regency_latest", "idempotency_key")


@pytest.fixture
def world(db):
    load_world(db)


def key_id_of(headers):
    return headers["Authorization"].split()[1].split("_")[1]


def stored(db):
    return {table: count_rows(db, table) for table in STORED}


def submission(recorded):
    return {"regency_code": LAMANDAU, "as_of": today().isoformat(), "recorded": recorded}


WRITES = {
    "submission": lambda client, key, first: client.post("/v1/submissions", json=submission(60_001), headers=key),
    "idempotent submission": lambda client, key, first: client.post(
        "/v1/submissions", json=submission(60_001), headers={**key, "Idempotency-Key": "revoked-1"}),
    "batch": lambda client, key, first: client.post(
        "/v1/submissions/batch", json={"items": [submission(60_001)]}, headers=key),
    "retraction": lambda client, key, first: client.post(
        f"/v1/submissions/{first}/retract", json={"reason": "typed twice"}, headers=key),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_a_key_revoked_after_it_was_read_cannot_write_and_nothing_is_stored(client, db, make_key, world, write):
    office = make_key("submitter", LAMANDAU)
    first = client.post("/v1/submissions", json=submission(60_000), headers=office)
    assert first.status_code == 201
    with db, db.cursor():
        keys.revoke_key(db, key_id=key_id_of(office))
    before = stored(db)

    response = write(client, office, first.json["id"])

    assert response.status_code == 401
    assert response.json["detail"] == "The API key is unknown or revoked."
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert stored(db) == before


@pytest.mark.parametrize("method, path, body", [
    ("GET", "/v1/provinces/62/coverage?colour=blue", None),  # 400 for the parameter, before any statement
    ("POST", "/v1/submissions", {"regency_code": LAMANDAU}),  # 422 for the body, before any statement
])
def test_a_revoked_key_is_refused_where_the_request_fails_before_the_database(client, db, make_key, world,
                                                                              method, path, body):
    office = make_key("submitter", LAMANDAU)
    assert client.get("/v1/provinces/62/coverage", headers=office).status_code == 200
    with db, db.cursor():
        keys.revoke_key(db, key_id=key_id_of(office))

    response = client.open(path, method=method, json=body, headers=office)

    assert response.status_code == 401
    assert response.json["type"] == "urn:ktpel-coverage:problem:unauthorized"


def test_a_key_edited_by_hand_is_refused_once_then_read_again(client, db, make_key, world):
    office = make_key("submitter", "11")
    assert client.get("/v1/provinces/62/coverage", headers=office).status_code == 200
    with db, db.cursor() as cur:  # an operator widens the scope in SQL instead of issuing a new key
        cur.execute("UPDATE api_key SET scopes = '{62}' WHERE id = %s", (key_id_of(office),))
    before = stored(db)

    refused = client.post("/v1/submissions", json=submission(60_000), headers=office)
    assert refused.status_code == 401  # what this process held of the key no longer holds: it fails closed
    assert stored(db) == before

    assert client.post("/v1/submissions", json=submission(60_000), headers=office).status_code == 201


def test_a_wrong_secret_for_a_key_already_read_is_refused_without_asking_the_database(make_app, database_url,
                                                                                     make_key, world):
    wire = QueryCounter(database_url)
    try:
        client = make_app(database_url=wire.url).test_client()
        reader = make_key("reader")
        assert client.get("/v1/provinces/62/coverage", headers=reader).status_code == 200
        token = reader["Authorization"].split()[1]
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        wire.take()

        response = client.get("/v1/provinces/62/coverage", headers={"Authorization": f"Bearer {forged}"})

        assert response.status_code == 401
        assert wire.take() == []
    finally:
        wire.close()


def test_the_log_line_of_a_refused_key_says_401(client, db, reader, world, capsys):
    assert client.get("/v1/provinces/62/coverage", headers=reader).status_code == 200
    with db, db.cursor():
        keys.revoke_key(db, key_id=key_id_of(reader))
    capsys.readouterr()

    response = client.get("/v1/provinces/62/coverage", headers={**reader, "X-Request-ID": "revoked-read"})

    assert response.status_code == 401
    [line] = request_lines(capsys.readouterr().err, "revoked-read")
    assert line["status"] == 401 and line["api_key_id"] == key_id_of(reader)


def test_a_service_connection_refuses_a_cursor_that_would_not_carry_the_check(make_app, database_url):
    app = make_app(database_url=database_url)
    pool = app.extensions["ktpel_pools"]["write"]
    conn = pool.getconn()
    try:
        with pytest.raises(TypeError, match="does not carry the request's check"):
            conn.cursor(cursor_factory=psycopg2.extensions.cursor)
        with pytest.raises(TypeError, match="named .* cannot carry the request's check"):
            conn.cursor("pages")
        with conn.cursor() as cur:  # the connection still serves
            cur.execute("SELECT 1 AS one")
            assert cur.fetchone()["one"] == 1
    finally:
        pool.putconn(conn)
