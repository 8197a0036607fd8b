"""The values of a Prepared statement, written by the service (db._literal) as psycopg2 writes them.

psycopg2 is the reference: for every value, what a service cursor sends must be byte for byte what
psycopg2's own mogrify makes of the same statement and values, and it must reach PostgreSQL as the
value it was.
"""
import datetime as dt
import re
from decimal import Decimal

import psycopg2
import psycopg2.sql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg2.extras import Json

from service.db import Array, Pool, Prepared
from service.web import dumps

# Every character a Python text can hold but a lone surrogate (which is not UTF-8 and which the
# service refuses before any statement); with the ones that matter to a literal weighted in.
texts = st.text(st.characters(blacklist_categories=("Cs",))) | st.sampled_from(
    ["", "'", "''", "\\", "\\'", "'\\", "a'b", "\\x27", "--", "/*", "E'", "$$", "\x00", "é'", "'; DROP TABLE x; --"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
values = (
    texts
    | st.integers(-2**70, 2**70)
    | st.none()
    | st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31))
    | st.lists(texts.filter(lambda t: "\x00" not in t) | st.none(), max_size=5).map(Array)
    | st.lists(st.integers(-2**63, 2**63 - 1) | st.dates() | st.none(), max_size=5).map(Array)
    | json_values.map(lambda v: Json(v, dumps=dumps))
    # the types psycopg2 writes itself
    | st.booleans() | st.decimals(allow_nan=True) | st.floats() | st.datetimes(timezones=st.just(dt.UTC))
)

STATEMENT = Prepared("literals_as_sent", "SELECT %(a)s AS a, %(b)s AS b, %(c)s AS c")


@pytest.fixture
def pool(database_url):
    made = Pool(database_url, maxconn=1, timeout=5, connect_timeout=5, statement_timeout_ms=5000)
    yield made
    made.closeall()


def psycopg2_writes(cur, statement, params):
    return psycopg2.extensions.cursor.mogrify(cur, statement, params)


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(a=values, b=values, c=values)
def test_every_value_is_written_as_psycopg2_writes_it(pool, a, b, c):
    params = {"a": a, "b": b, "c": c}
    with pool.transaction(autocommit=True) as conn, conn.cursor() as cur:
        try:
            expected = psycopg2_writes(cur, STATEMENT, params)
        except ValueError as refused:  # a NUL in a text: psycopg2 refuses it, and so does the service
            with pytest.raises(ValueError, match=re.escape(str(refused))):
                cur.mogrify(STATEMENT, params)
            return
        assert cur.mogrify(STATEMENT, params) == expected


TEXT_BACK = Prepared("text_back", "SELECT %(value)s::text AS value")


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(value=texts.filter(lambda t: "\x00" not in t))
def test_a_text_reaches_postgresql_as_it_was(pool, value):
    with pool.transaction(autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(TEXT_BACK, {"value": value})
        assert cur.fetchone() == {"value": value}


@pytest.mark.parametrize("value", ["a\\'b", "\\", "x\\", "'\\'", "é\\'"])
def test_a_backslash_is_safe_whatever_standard_conforming_strings_says(pool, value):
    with pool.transaction(autocommit=True) as conn, conn.cursor() as cur:
        for setting in ("off", "on"):
            cur.execute(f"SET standard_conforming_strings = {setting}")
            cur.execute(TEXT_BACK, {"value": value})
            assert cur.fetchone() == {"value": value}
            assert cur.query == psycopg2_writes(cur, TEXT_BACK, {"value": value})


def test_a_connection_in_another_encoding_is_left_to_psycopg2(pool):
    value = "Sélatan 'Kabupaten'"
    with pool.transaction(autocommit=True) as conn:
        conn.set_client_encoding("LATIN1")
        try:
            with conn.cursor() as cur:
                cur.execute(TEXT_BACK, {"value": value})
                assert cur.fetchone() == {"value": value}
                assert cur.query == psycopg2_writes(cur, TEXT_BACK, {"value": value})
                assert "é".encode("latin-1") in cur.query
        finally:
            conn.set_client_encoding("UTF8")


@pytest.mark.parametrize("value, literal", [
    ("62.01", b"'62.01'"),
    ("O'Brien", b"'O''Brien'"),
    (0, b"0"),
    (-5, b" -5"),  # so that "1-%(n)s" cannot become "1--5", a comment
    (None, b"NULL"),
    (dt.date(2016, 12, 31), b"'2016-12-31'::date"),
    (Array(["62", None, 'a"b']), b"""'{"62",NULL,"a\\"b"}'"""),
    (Json({"code": "decrease"}, dumps=dumps), b"""'{"code":"decrease"}'"""),
    (True, b"true"),
    (Decimal("95.00"), b"95.00"),
])
def test_what_a_value_is_written_as(pool, value, literal):
    with pool.transaction(autocommit=True) as conn, conn.cursor() as cur:
        assert cur.mogrify(TEXT_BACK, {"value": value}) == b"EXECUTE " + TEXT_BACK.name.encode() + b"(" + literal + b")"


@pytest.mark.parametrize("between", [";\n", ";\nSELECT 'x%%' AS pattern;\n"])  # a %% psycopg2 formats to %
def test_a_statement_composed_of_prepared_ones_is_written_as_psycopg2_writes_it(pool, between):
    composed = psycopg2.sql.Composed([TEXT_BACK, psycopg2.sql.SQL(between), STATEMENT])
    params = {"value": "it's", "a": 1, "b": dt.date(2016, 6, 30), "c": None}
    with pool.transaction(autocommit=True) as conn, conn.cursor() as cur:
        assert cur.mogrify(composed, params) == psycopg2_writes(cur, composed, params)
        cur.execute(composed, params)
        assert cur.fetchone() == {"a": "1", "b": "2016-06-30", "c": None}  # the last statement: untyped, so text
