"""db.Prepared: a statement is prepared once per connection and then run by name."""
import datetime as dt
from decimal import Decimal

import psycopg2
import psycopg2.errors
import pytest

from service.db import Pool, Prepared
from service.errors import DatabaseUnavailable

from .conftest import count_rows
from .coverage_world import put_province, put_regency, put_target


def prepared_names(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT name FROM pg_prepared_statements ORDER BY name")
        return [row["name"] for row in cur.fetchall()]


def test_named_placeholders_become_parameters_and_a_double_percent_a_percent(db):
    statement = Prepared("sum_of", "SELECT %(a)s::int + %(b)s::int AS total, %(a)s::int AS a, 7 %% 4 AS rest")

    assert statement.text == "SELECT $1::int + $2::int AS total, $1::int AS a, 7 % 4 AS rest"
    with db.cursor() as cur:
        cur.execute(statement, {"a": 40, "b": 2})
        assert cur.fetchone() == {"total": 42, "a": 40, "rest": 3}
        assert cur.query.decode() == f"EXECUTE {statement.name}(40, 2)"


def test_it_is_prepared_once_per_connection_and_outlives_a_rollback(db, database_url):
    statement = Prepared("one_row", "SELECT %(n)s::int AS n")
    with db.cursor() as cur:
        cur.execute(statement, {"n": 1})
    db.rollback()  # PREPARE is not transactional: the statement stays

    with db.cursor() as cur:
        cur.execute(statement, {"n": 2})
        assert cur.fetchone() == {"n": 2}
    assert prepared_names(db) == [statement.name]

    other = psycopg2.connect(database_url, cursor_factory=psycopg2.extras.RealDictCursor)
    try:
        with other.cursor() as cur:
            cur.execute(statement, {"n": 3})
            assert cur.fetchone() == {"n": 3}
        assert prepared_names(other) == [statement.name]
    finally:
        other.close()


def test_a_statement_that_fails_to_prepare_is_tried_again_next_time(db):
    statement = Prepared("missing_table", "SELECT count(*) AS n FROM table_made_later WHERE id = %(id)s")
    with pytest.raises(psycopg2.errors.UndefinedTable), db.cursor() as cur:
        cur.execute(statement, {"id": 1})
    db.rollback()
    assert prepared_names(db) == []
    with db.cursor() as cur:
        cur.execute("CREATE TEMPORARY TABLE table_made_later (id int)")

        cur.execute(statement, {"id": 1})

        assert cur.fetchone() == {"n": 0}


def test_versions_of_a_statement_take_different_names():
    assert Prepared("same", "SELECT 1").name != Prepared("same", "SELECT 2").name
    assert Prepared("same", "SELECT 1").name == Prepared("same", "SELECT 1").name


@pytest.mark.parametrize("query", ["SELECT %s", "SELECT 1 WHERE x LIKE 'a%'", "SELECT %(a)s, %d"])
def test_only_named_placeholders_are_taken(query):
    with pytest.raises(ValueError, match="placeholders only"):
        Prepared("bad", query)


def backend_of(pool):
    with pool.transaction() as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid() AS pid")
        return cur.fetchone()["pid"]


@pytest.fixture
def pool(database_url):
    made = Pool(database_url, maxconn=1, timeout=5, connect_timeout=5, statement_timeout_ms=5000)
    yield made
    made.closeall()


def test_a_connection_whose_statements_were_deallocated_is_replaced_and_the_error_says_try_again(pool):
    statement = Prepared("one_row", "SELECT %(n)s::int AS n")
    with pool.transaction() as conn, conn.cursor() as cur:
        cur.execute(statement, {"n": 1})
        cur.execute("DEALLOCATE ALL")  # what a pooler in transaction mode does between clients
    first = backend_of(pool)

    with pytest.raises(DatabaseUnavailable, match="rolled back. Try again"), pool.transaction() as conn:
        with conn.cursor() as cur:
            cur.execute(statement, {"n": 2})

    with pool.transaction() as conn, conn.cursor() as cur:
        cur.execute(statement, {"n": 3})
        assert cur.fetchone() == {"n": 3}
    assert backend_of(pool) != first


def test_a_plan_whose_result_type_changed_under_it_is_replaced(pool, db):
    with db, db.cursor() as cur:
        cur.execute("CREATE TABLE retyped (a integer)")
        cur.execute("INSERT INTO retyped VALUES (7)")
    try:
        statement = Prepared("retyped", "SELECT a FROM retyped WHERE %(n)s::int > 0")
        with pool.transaction() as conn, conn.cursor() as cur:
            cur.execute(statement, {"n": 1})
        with db, db.cursor() as cur:
            cur.execute("ALTER TABLE retyped ALTER a TYPE text")

        with pytest.raises(DatabaseUnavailable) as raised, pool.transaction() as conn, conn.cursor() as cur:
            cur.execute(statement, {"n": 1})
        assert "cached plan must not change result type" in str(raised.value.__cause__)

        with pool.transaction() as conn, conn.cursor() as cur:
            cur.execute(statement, {"n": 1})
            assert cur.fetchone() == {"a": "7"}
    finally:
        with db, db.cursor() as cur:
            cur.execute("DROP TABLE retyped")


def test_other_errors_keep_the_connection_and_its_statements(pool):
    statement = Prepared("one_row", "SELECT %(n)s::int AS n")
    with pool.transaction() as conn, conn.cursor() as cur:
        cur.execute(statement, {"n": 1})
    first = backend_of(pool)

    with pytest.raises(psycopg2.errors.FeatureNotSupported), pool.transaction() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_class FOR UPDATE")  # 0A000 too, not about our plans

    assert backend_of(pool) == first
    with pool.transaction() as conn, conn.cursor() as cur:
        cur.execute(statement, {"n": 2})
        assert cur.fetchone() == {"n": 2}


def test_a_request_on_a_connection_that_lost_its_statements_stores_nothing_and_the_next_one_works(app, client, admin,
                                                                                                 make_key, db):
    pool = app.extensions["ktpel_pools"]["write"]
    assert client.get("/v1/provinces", headers=admin).status_code == 200  # the key check is prepared
    with pool.transaction() as conn, conn.cursor() as cur:
        cur.execute("DEALLOCATE ALL")
    other = make_key("admin")  # not read by this process yet: its check is the prepared statement, on its own

    refused = client.put("/v1/provinces/62", json={"name": "Kalimantan Tengah"}, headers=other)

    assert refused.status_code == 503
    assert refused.json["type"].endswith("database-unavailable") and "Try again" in refused.json["detail"]
    assert count_rows(db, "province") == 0
    assert client.put("/v1/provinces/62", json={"name": "Kalimantan Tengah"}, headers=admin).status_code in (200, 201)
    assert count_rows(db, "province") == 1


def test_the_service_plans_each_prepared_statement_once_for_any_values(make_app, db, reader):
    put_province(db, "62", "Kalimantan Tengah")
    put_regency(db, "62.09", name="Lamandau", population={dt.date(2016, 1, 1): 10_000})
    put_target(db, dt.date(2016, 1, 1), Decimal("95"))
    app = make_app(pool_max=1)
    client = app.test_client()
    days = [f"2016-0{month}-01" for month in range(1, 9)]

    for day in days:  # left to choose, PostgreSQL plans the first five runs for their values
        assert client.get(f"/v1/coverage?as_of={day}", headers=reader).status_code == 200

    pool = app.extensions["ktpel_pools"]["write"]
    conn = pool.getconn()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                        " WHERE name LIKE 'nation_as_of_%'")
            assert cur.fetchone() == {"generic_plans": len(days), "custom_plans": 0}
    finally:
        pool.putconn(conn)
