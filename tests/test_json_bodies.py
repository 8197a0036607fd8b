"""web.dumps: orjson writes the bodies, and they read back as the standard library's JSON of the same values."""
import datetime as dt
import json
from decimal import Decimal

import orjson
from hypothesis import given
from hypothesis import strategies as st

from service.coverage.rules import Hundredths
from service.web import _ORJSON_OPTIONS, _default, _orjson_default, dumps, encoded


def standard_library(value):
    return json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))


def test_the_service_values_print_as_they_always_have():
    value = {
        "coverage_percent": Hundredths.of(8974), "target_percent": Hundredths.of(9500), "pace": Hundredths.of(-1),
        "zero": Hundredths.of(0), "as_of": dt.date(2026, 1, 2),
        "received_at": dt.datetime(2026, 1, 2, 3, 4, 5, 6, dt.UTC),
        "exact": Decimal("95.00"), "half": Decimal("12.5"), "name": "Kota Tanjungpinang ✓\n\u2028\x01", "none": None,
        "list": [1, 2.5, True, False], "largest": 2**63 - 1,
    }

    assert dumps(value) == standard_library(value)
    # ...and orjson itself takes them all (refused, they would go to the standard library unseen)
    assert orjson.dumps(value, default=_orjson_default, option=_ORJSON_OPTIONS).decode() == dumps(value)
    assert '"coverage_percent":89.74' in dumps(value) and '"received_at":"2026-01-02T03:04:05.000006Z"' in dumps(value)


def test_what_orjson_refuses_is_written_by_the_standard_library():
    for value in ({"recorded": 10**30}, {62: "Kalimantan Tengah ✓"}, {"recorded": -(2**64)}):
        assert dumps(value) == standard_library(value)
        assert encoded(value) == standard_library(value).encode()  # the body's bytes, by the same path


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.dates()
    | st.integers(-10**9, 10**9).map(Hundredths.of) | st.decimals(places=2, allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
))
def test_any_body_reads_back_as_the_standard_librarys(value):
    assert json.loads(dumps(value)) == json.loads(standard_library(value))
