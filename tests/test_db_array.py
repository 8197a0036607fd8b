"""db.Array: lists sent as one array literal come back from PostgreSQL exactly as they were."""
import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.db import Array

# Any text PostgreSQL can hold: no NUL; the literal's own syntax ({ } , " \ and spaces) included.
texts = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))) | st.sampled_from(
    ["NULL", "null", "", " ", '"', "\\", "{}", "{a,b}", "a,b", " padded ", "\\N", "'"])


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(values=st.lists(texts | st.none(), max_size=20))
def test_texts_come_back_as_sent(db, values):
    with db.cursor() as cur:
        cur.execute("SELECT %(values)s::text[] AS back", {"values": Array(values)})
        assert cur.fetchone()["back"] == values


@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(days=st.lists(st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)) | st.none(), max_size=20),
       numbers=st.lists(st.integers(-2**63, 2**63 - 1) | st.none(), max_size=20))
def test_dates_and_integers_come_back_as_sent(db, days, numbers):
    with db.cursor() as cur:
        cur.execute("SELECT %(days)s::date[] AS days, %(numbers)s::bigint[] AS numbers",
                    {"days": Array(days), "numbers": Array(numbers)})
        assert cur.fetchone() == {"days": days, "numbers": numbers}


@pytest.mark.parametrize("value", [True, 1.5, dt.datetime(2016, 6, 30, 12), b"bytes", ["nested"]])
def test_other_elements_are_refused_before_anything_is_sent(value):
    with pytest.raises(TypeError, match="db.Array holds str, int, date or None"):
        Array([value]).literal()
