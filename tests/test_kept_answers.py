"""Province answers kept with the snapshot they were computed in (service/coverage/kept.py).

An answer kept by the app is sent again only while the database shows its statement the same
snapshot; every committed change, whichever way it was made, is in the next read. Each expected
answer is the one a new app, which has kept nothing, computes from the same rows.
"""
import datetime as dt
from decimal import Decimal

import psycopg2
import psycopg2.extras
import pytest

from service.coverage import queries, rules
from service.coverage.kept import KeptAnswer, KeptAnswers

from .coverage_world import put_province, put_regency, put_target, submit
from .wire_count import QueryCounter

D = dt.date
PROVINCE = "/v1/provinces/62/coverage?as_of=2016-06-30"


@pytest.fixture
def world(db):
    put_province(db, "62", "Kalimantan Tengah")
    put_regency(db, "62.09", name="Lamandau", population={D(2016, 1, 1): 10_000})
    put_regency(db, "62.11", name="Katingan", population={D(2016, 1, 1): 20_000})
    put_regency(db, "62.05", name="Barito Utara")  # no population: no coverage, last by coverage
    put_target(db, D(2016, 1, 1), Decimal("95"))
    submit(db, "62.09", D(2016, 6, 1), 5_000)
    submit(db, "62.11", D(2016, 5, 1), 9_000)
    return db


@pytest.fixture
def rows_computed(monkeypatch):
    """How many regency rows the coverage rules computed: none for an answer that was kept."""
    computed = []
    regency_row = rules.regency_row

    def counted(*args, **kwargs):
        computed.append(1)
        return regency_row(*args, **kwargs)

    monkeypatch.setattr(rules, "regency_row", counted)
    return computed


def answer(client, headers, path=PROVINCE, **more):
    response = client.get(path, headers={**headers, **more})
    assert response.status_code == 200, response.data
    return response.data, response.headers["ETag"]


def computed_anew(make_app, headers, path=PROVINCE, **more):
    return answer(make_app().test_client(), headers, path, **more)


def _sql(db, statement, params=None):
    with db, db.cursor() as cur:
        cur.execute(statement, params)


def _post(client, make_key, body):
    office = make_key("submitter", "62", name="Disdukcapil Kalteng")
    response = client.post("/v1/submissions", json=body, headers=office)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _retract(db, client, make_key, regency_code):
    with db, db.cursor() as cur:
        cur.execute("SELECT id FROM submission WHERE regency_code = %s", (regency_code,))
        (row,) = cur.fetchall()
    response = client.post(f"/v1/submissions/{row['id']}/retract", json={"reason": "typo"}, headers=make_key("admin"))
    assert response.status_code == 200, response.get_json()


CHANGES = {
    "a submission through the API": lambda db, client, make_key: _post(
        client, make_key, {"regency_code": "62.09", "as_of": "2016-06-20", "recorded": 6_000}),
    "a retraction through the API": lambda db, client, make_key: _retract(db, client, make_key, "62.09"),
    "a count corrected in psql": lambda db, client, make_key: _sql(
        db, "UPDATE submission SET recorded = 5500 WHERE regency_code = '62.09'"),
    "a submission deleted in psql": lambda db, client, make_key: _sql(
        db, "DELETE FROM submission WHERE regency_code = '62.11'"),
    "a new eligible population": lambda db, client, make_key: _sql(
        db, "INSERT INTO eligible_population (regency_code, effective_from, count) "
            "VALUES ('62.09', '2016-06-01', 9000)"),
    "a new national target": lambda db, client, make_key: put_target(db, D(2016, 6, 1), Decimal("90")),
    "a regency renamed": lambda db, client, make_key: put_regency(db, "62.09", name="Kabupaten Lamandau"),
    "a province renamed": lambda db, client, make_key: put_province(db, "62", "Kalteng"),
    "a regency added": lambda db, client, make_key: put_regency(db, "62.02", name="Kotawaringin Timur"),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_committed_after_an_answer_was_kept_is_in_the_next_read(world, client, reader, make_app,
                                                                          make_key, rows_computed, change):
    before = answer(client, reader)
    assert len(rows_computed) == 3
    assert answer(client, reader) == before and len(rows_computed) == 3  # kept: nothing computed

    CHANGES[change](world, client, make_key)

    after = answer(client, reader)
    assert after != before
    assert after == computed_anew(make_app, reader)


def test_a_write_not_yet_committed_is_not_in_the_answer_and_is_once_committed(world, client, reader, make_app,
                                                                               database_url):
    before = answer(client, reader)
    writer = psycopg2.connect(database_url)
    try:
        with writer.cursor() as cur:
            cur.execute("UPDATE submission SET recorded = 4000 WHERE regency_code = '62.09'")
        while_open = answer(client, reader)
        writer.commit()
    finally:
        writer.close()

    assert while_open == before
    assert answer(client, reader) == computed_anew(make_app, reader) != before


def test_each_date_and_order_is_an_answer_of_its_own(world, client, reader, make_app):
    paths = [PROVINCE, PROVINCE + "&sort=-coverage_percent", "/v1/provinces/62/coverage?as_of=2016-05-15",
             PROVINCE + "&sort=name"]
    for path in paths + paths:
        assert answer(client, reader, path) == computed_anew(make_app, reader, path)
    assert len({answer(client, reader, path) for path in paths}) == len(paths)


def test_a_kept_answer_as_csv_and_as_304(world, client, reader, make_app):
    _, etag = answer(client, reader)

    assert answer(client, reader, Accept="text/csv") == computed_anew(make_app, reader, Accept="text/csv")
    unchanged = client.get(PROVINCE, headers={**reader, "If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.headers["ETag"] == etag


def test_a_province_not_found_is_not_kept(world, app, reader):
    client = app.test_client()
    assert client.get("/v1/provinces/63/coverage", headers=reader).status_code == 404
    assert len(app.extensions["ktpel_kept_answers"]) == 0

    put_province(world, "63", "Kalimantan Selatan")

    found = client.get("/v1/provinces/63/coverage", headers=reader)
    assert found.status_code == 200 and found.get_json()["province"]["name"] == "Kalimantan Selatan"


def test_the_statement_after_a_kept_answer_carries_its_snapshot(world, make_app, database_url, reader):
    wire = QueryCounter(database_url)
    try:
        app = make_app(database_url=wire.url)
        client = app.test_client()
        answer(client, reader)
        first = [q for q in wire.take() if "EXECUTE province_as_of_" in q]
        (kept,) = app.extensions["ktpel_kept_answers"]._answers.values()
        answer(client, reader)
        second = [q for q in wire.take() if "EXECUTE province_as_of_" in q]
    finally:
        wire.close()

    assert len(first) == len(second) == 1
    assert first[0].rstrip(")").endswith("NULL")  # nothing kept yet: computed
    assert second[0].rstrip(")").endswith("'" + kept.snapshot + "'")


def test_an_answer_kept_from_another_server_is_not_sent(world, app, reader, make_app):
    client = app.test_client()
    answer(client, reader)
    kept_answers = app.extensions["ktpel_kept_answers"]
    (question,) = kept_answers._answers
    started = "2001-02-03 04:05:06.789+00"
    kept = kept_answers.get(question).snapshot
    assert not kept.startswith(started)
    # The same snapshot (its text holds no space) on a server started at another time (a promoted
    # standby, a restored backup).
    elsewhere = f"{started} {kept.rsplit(' ', 1)[1]}"
    kept_answers.keep(question, KeptAnswer(elsewhere, {"regencies": [], "made": "elsewhere"}))

    assert answer(client, reader) == computed_anew(make_app, reader)


def test_a_revoked_key_is_refused_where_a_kept_answer_would_be_sent(world, client, make_key, db):
    reader = make_key("reader")
    answer(client, reader)
    with db, db.cursor() as cur:
        cur.execute("UPDATE api_key SET revoked_at = now()")

    refused = client.get(PROVINCE, headers=reader)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")


def test_head_of_a_kept_answer(world, client, reader, rows_computed):
    body, etag = answer(client, reader)
    head = client.head(PROVINCE, headers=reader)

    assert head.status_code == 200 and head.headers["ETag"] == etag and head.data == b""
    assert int(head.headers["Content-Length"]) == len(body) and len(rows_computed) == 3


def _scans(plan):
    """(node type, loops) of every scan in an EXPLAIN (ANALYZE, FORMAT JSON) plan."""
    found = [(plan["Node Type"], plan["Actual Loops"])] if plan["Node Type"].endswith("Scan") else []
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


def test_the_statement_reads_no_table_when_its_snapshot_is_the_one_given(world, database_url):
    conn = psycopg2.connect(database_url, cursor_factory=psycopg2.extras.RealDictCursor)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET plan_cache_mode = force_generic_plan")
            execute = queries._PROVINCE_AS_OF.as_string(conn)  # PREPAREs it on this connection
            plans = {}
            now = queries.SNAPSHOT_NOW
            for unless in ("NULL", now, "'1:1:'"):
                cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + execute % {
                    "as_of": "'2016-06-30'", "province": "'62'", "unless_snapshot": unless})
                plans[unless] = _scans(cur.fetchone()["QUERY PLAN"][0]["Plan"])
        snapshot, found = queries.province_as_of(conn, province_code="62", as_of=D(2016, 6, 30))
        # Unchanged, unless something committed on the server in between (autovacuum's ANALYZE, a
        # test run beside this one): then again.
        for _ in range(5):
            again, unchanged = queries.province_as_of(conn, province_code="62", as_of=D(2016, 6, 30),
                                                      unless_snapshot=snapshot)
            if unchanged is queries.UNCHANGED:
                break
            snapshot = again
    finally:
        conn.close()

    assert plans[now] and all(loops == 0 for _, loops in plans[now])
    for computed in (plans["NULL"], plans["'1:1:'"]):
        assert ("Seq Scan", 1) in computed or any(kind.startswith("Index") and loops for kind, loops in computed)
    assert unchanged is queries.UNCHANGED and again == snapshot
    assert [r["code"] for r in found[2]] == ["62.05", "62.09", "62.11"]


def test_answers_kept_are_bounded():
    kept_answers = KeptAnswers(max_answers=2)
    for n in range(3):
        kept_answers.keep(("province", n), KeptAnswer(snapshot=f"{n}:{n}:", payload={}))

    assert kept_answers.get(("province", 2)) is not None and len(kept_answers) == 1

