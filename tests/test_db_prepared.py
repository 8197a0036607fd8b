"""db.Prepared: a statement is prepared once per connection and then run by name."""
import psycopg2
import psycopg2.errors
import pytest

from service.db import Prepared


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
