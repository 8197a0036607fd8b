"""POST /v1/submissions/batch: JSON and CSV, all or nothing, dry runs, limits."""
import datetime as dt
import decimal
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from service.submissions import queries
from service.submissions.schemas import SubmissionIn, plainly_valid_item

from .conftest import count_rows
from .submissions_world import KAPUAS_HULU, LAMANDAU, MURUNG_RAYA, PALANGKA_RAYA, SERUYAN, feed_ids, load_world

CSV_HEADER = "regency_code,as_of,recorded,reference,note\n"


@pytest.fixture
def office(db, make_key):
    load_world(db)
    return make_key("submitter", "62", name="Disdukcapil Kalimantan Tengah")


def item(code=LAMANDAU, as_of="2016-06-30", recorded=62_150, **more):
    return {"regency_code": code, "as_of": as_of, "recorded": recorded, **more}


def batch(client, headers, items, **query):
    return client.post("/v1/submissions/batch", json={"items": items}, headers=headers, query_string=query)


def csv_batch(client, headers, text, **query):
    return client.post("/v1/submissions/batch", data=text.encode(), content_type="text/csv",
                       headers=headers, query_string=query)


def test_batch_stores_every_item_and_answers_each(client, db, office, reader):
    response = batch(client, office, [item(), item(PALANGKA_RAYA, recorded=83_718), item(as_of="2016-07-31",
                                                                                          recorded=62_900)])

    assert response.status_code == 201
    answer = response.get_json()
    assert answer["summary"] == {"created": 3, "unchanged": 0, "with_warnings": 0}
    assert [i["index"] for i in answer["items"]] == [0, 1, 2]
    assert {i["status"] for i in answer["items"]} == {"created"}
    stored = client.get(f"/v1/submissions/{answer['items'][1]['id']}", headers=reader).get_json()
    assert (stored["regency_code"], stored["recorded"], stored["status"]) == (PALANGKA_RAYA, 83_718, "effective")
    assert feed_ids(client, reader) == [(i["id"], "created") for i in answer["items"]]
    assert count_rows(db, "audit_event") == 1


def test_batch_repeating_effective_counts_marks_them_unchanged(client, db, office):
    first = batch(client, office, [item()]).get_json()

    again = batch(client, office, [item(), item(SERUYAN, recorded=5)])

    assert again.status_code == 201
    answer = again.get_json()
    assert answer["summary"] == {"created": 1, "unchanged": 1, "with_warnings": 0}
    assert answer["items"][0] == {"index": 0, "id": first["items"][0]["id"], "status": "unchanged", "warnings": []}
    assert count_rows(db, "submission") == 2
    all_unchanged = batch(client, office, [item()])
    assert all_unchanged.status_code == 200
    assert all_unchanged.get_json()["summary"] == {"created": 0, "unchanged": 1, "with_warnings": 0}


def test_batch_warns_against_earlier_items_of_the_same_batch(client, office):
    answer = batch(client, office, [item(as_of="2016-07-31", recorded=100), item(as_of="2016-06-30", recorded=200)])

    assert answer.get_json()["items"][0]["warnings"][0]["code"] == "decrease"
    assert answer.get_json()["items"][1]["warnings"] == []
    assert answer.get_json()["summary"]["with_warnings"] == 1


def test_every_bad_item_is_listed_by_pointer_and_nothing_is_stored(client, db, office, reader):
    response = batch(client, office, [
        item(),
        item(recorded=1.5),
        item(SERUYAN, as_of="2016-02-30", colour="red"),
        "not an object",
        item("62.99"),
        item(PALANGKA_RAYA),
        item(PALANGKA_RAYA, recorded=1),
    ])

    assert response.status_code == 422
    assert [e["pointer"] for e in response.get_json()["errors"]] == [
        "/items/1/recorded", "/items/2/as_of", "/items/2/colour", "/items/3", "/items/4/regency_code",
        "/items/6/as_of",
    ]
    details = {e["pointer"]: e["detail"] for e in response.get_json()["errors"]}
    assert "no regency 62.99" in details["/items/4/regency_code"]
    assert "Item 5" in details["/items/6/as_of"]
    assert count_rows(db, "submission") == 0
    assert feed_ids(client, reader) == []
    assert count_rows(db, "audit_event") == 0


def test_items_outside_the_scope_are_422_listed_with_every_other_problem(client, db, office, reader):
    response = batch(client, office, [item(), item(KAPUAS_HULU), item(recorded=-1, as_of="2016-07-31"),
                                      item(KAPUAS_HULU, as_of="2016-07-31")])

    assert response.status_code == 422
    assert [e["pointer"] for e in response.get_json()["errors"]] == [
        "/items/1/regency_code", "/items/2/recorded", "/items/3/regency_code",
    ]
    assert "scope" in response.get_json()["errors"][0]["detail"]
    assert count_rows(db, "submission") == 0
    assert feed_ids(client, reader) == []


@pytest.mark.parametrize("body, pointer", [
    ({}, "/items"),
    ({"items": []}, "/items"),
    ({"items": {"0": {}}}, "/items"),
    ({"items": [], "extra": 1}, "/extra"),
])
def test_batch_body_shape_is_checked(client, db, office, body, pointer):
    response = client.post("/v1/submissions/batch", json=body, headers=office)

    assert response.status_code == 422
    assert pointer in [e["pointer"] for e in response.get_json()["errors"]]
    assert count_rows(db, "submission") == 0


def test_more_than_10000_items_is_422(client, db, office):
    response = batch(client, office, [item(as_of=f"2016-01-{1 + i % 28:02d}") for i in range(10_001)])

    assert response.status_code == 422
    assert response.get_json()["errors"][0]["pointer"] == "/items"
    assert count_rows(db, "submission") == 0


def test_batch_body_may_exceed_1_mib_but_not_16_mib(client, db, office):
    note = "n" * 1000
    days = [f"{year}-{month:02d}-{day:02d}" for year in range(2012, 2017) for month in range(1, 13)
            for day in range(1, 29)]
    items = [item(as_of=d, recorded=i, note=note) for i, d in enumerate(days[:1500])]
    assert len(json.dumps({"items": items})) > 1024 * 1024

    accepted = batch(client, office, items)
    too_large = client.post("/v1/submissions/batch", data=b'{"items": [' + b" " * (16 * 1024 * 1024) + b"]}",
                            content_type="application/json", headers=office)

    assert accepted.status_code == 201 and accepted.get_json()["summary"]["created"] == 1500
    assert too_large.status_code == 413
    assert count_rows(db, "submission") == 1500


def test_dry_run_answers_the_same_summary_and_stores_nothing(client, db, office, reader):
    batch(client, office, [item()])
    items = [item(), item(SERUYAN, recorded=500_000), item(PALANGKA_RAYA)]

    dry = batch(client, office, items, dry_run="true")

    assert dry.status_code == 200
    assert dry.get_json()["dry_run"] is True
    assert dry.get_json()["summary"] == {"created": 2, "unchanged": 1, "with_warnings": 1}
    assert [i["id"] for i in dry.get_json()["items"]][1:] == [None, None]
    assert count_rows(db, "submission") == 1
    assert len(feed_ids(client, reader)) == 1
    real = batch(client, office, items)
    assert real.get_json()["summary"] == dry.get_json()["summary"]


def test_csv_batch_is_stored_like_json(client, db, office, reader):
    text = CSV_HEADER + f"{LAMANDAU},2016-06-30,62150,LMD-06,\n{PALANGKA_RAYA},2016-06-30,83718,,\"Kota, semester I\"\n"

    response = csv_batch(client, office, text)

    assert response.status_code == 201
    ids = [i["id"] for i in response.get_json()["items"]]
    first = client.get(f"/v1/submissions/{ids[0]}", headers=reader).get_json()
    second = client.get(f"/v1/submissions/{ids[1]}", headers=reader).get_json()
    assert (first["recorded"], first["reference"], first["note"]) == (62_150, "LMD-06", None)
    assert (second["recorded"], second["reference"], second["note"]) == (83_718, None, "Kota, semester I")


def test_csv_without_optional_columns_is_accepted(client, office):
    response = csv_batch(client, office, f"as_of,regency_code,recorded\n2016-06-30,{LAMANDAU},62150\n")

    assert response.status_code == 201


def test_csv_errors_name_the_item_and_its_line(client, db, office):
    text = CSV_HEADER + (
        f"{LAMANDAU},2016-06-30,62150,,\n"
        f"{LAMANDAU},2016-06-31,1.5,,\n"
        f"{KAPUAS_HULU},2016-06-30,-3,,\n"
    )

    response = csv_batch(client, office, text)

    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert [e["pointer"] for e in errors] == [
        "/items/1/as_of", "/items/1/recorded", "/items/2/recorded", "/items/2/regency_code",
    ]
    assert [e["detail"].split(":")[0] for e in errors] == ["Line 3", "Line 3", "Line 4", "Line 4"]
    assert count_rows(db, "submission") == 0


@pytest.mark.parametrize("text", [
    "regency,as_of,recorded\n62.09,2016-06-30,1\n",
    "regency_code,as_of\n62.09,2016-06-30\n",
    CSV_HEADER + "62.09,2016-06-30,1,,,surplus\n",
    "",
])
def test_csv_with_a_bad_header_or_row_is_422(client, db, office, text):
    response = csv_batch(client, office, text)

    assert response.status_code == 422
    assert count_rows(db, "submission") == 0


def test_batch_in_another_content_type_is_415(client, db, office):
    response = client.post("/v1/submissions/batch", data="x", content_type="text/plain", headers=office)

    assert response.status_code == 415


def test_batch_is_for_submitters_only(client, db, office, reader):
    assert batch(client, reader, [item()]).status_code == 403
    assert count_rows(db, "submission") == 0


_MISSING = object()
_ODD = [None, True, False, 5.0, decimal.Decimal("5.0"), "", "x" * 101, 0, -1, [], {}]
# Each field takes a valid value, an edge value, a value of another field's kind, or is left out.
_CANDIDATES = {
    "regency_code": ["62.09", "62.9", "6209", "62.09\n", "٦٢.٠٩", 62.09],
    "as_of": ["2016-06-30", "2011-01-01", "2010-12-31", "2016-02-30", "2099-01-01", "2016-6-30", 20160630,
              "2016-06-30\n", "٢٠١٦-٠٦-٣٠"],
    "recorded": [62_150, 0, 2**31 - 1, 2**31, -1, "62150", 62150.0, decimal.Decimal("62150.0"), 1.5],
    "reference": ["r", "x" * 100, "x" * 101, 7],
    "note": ["n", "n" * 1000, "n" * 1001, 7],
    "other": [_MISSING, "extra"],
}
_VALID = {"regency_code": "62.09", "as_of": "2016-06-30", "recorded": 62_150, "reference": "r", "note": "n"}


@st.composite
def _items(draw):
    """A valid item with one or two fields changed or left out: near the edge, where the two could disagree."""
    item = dict(_VALID)
    for name in draw(st.lists(st.sampled_from(sorted(_CANDIDATES)), min_size=1, max_size=2, unique=True)):
        item[name] = draw(st.sampled_from([*_CANDIDATES[name], *_ODD, _MISSING]))
    return {k: v for k, v in item.items() if v is not _MISSING}


@settings(max_examples=400, deadline=None)
@given(raw=_items())
def test_the_fast_item_check_accepts_only_what_the_schema_accepts(raw):
    quick = plainly_valid_item(raw)
    try:
        loaded = SubmissionIn().load(raw)
    except ValidationError:
        loaded = None
    assert quick is None or quick == {"reference": None, "note": None, **loaded}


_CODES = [LAMANDAU, SERUYAN, MURUNG_RAYA, PALANGKA_RAYA]
_stored = st.lists(st.tuples(st.sampled_from(_CODES), st.integers(0, 15), st.integers(0, 90_000), st.booleans()),
                   max_size=25)
_asked = st.lists(st.tuples(st.sampled_from(_CODES), st.integers(0, 18)), min_size=1, max_size=30,
                  unique=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stored=_stored, asked=_asked)
def test_the_standing_read_per_regency_is_the_standing_probed_per_item(db, stored, asked):
    """A batch's standing (range scans per regency) against a single POST's (probes per item)."""
    start = dt.date(2016, 5, 20)
    with db, db.cursor() as cur:
        cur.execute("DELETE FROM submission_change; DELETE FROM submission; DELETE FROM eligible_population;"
                    "DELETE FROM regency; DELETE FROM province")
    load_world(db)
    with db, db.cursor() as cur:  # a later population for one regency: effective dating in the span
        cur.execute("INSERT INTO eligible_population (regency_code, effective_from, count) VALUES (%s, %s, 70000)",
                    (LAMANDAU, start + dt.timedelta(days=20)))
        for code, day, recorded, retracted in stored:
            cur.execute(
                "INSERT INTO submission (regency_code, as_of, recorded, retracted_at, retraction_reason)"
                " VALUES (%s, %s, %s, CASE WHEN %s THEN now() END, CASE WHEN %s THEN 'test' END)",
                (code, start + dt.timedelta(days=day), recorded, retracted, retracted))
    items = [{"regency_code": code, "as_of": start + dt.timedelta(days=day)} for code, day in asked]

    try:
        by_regency = queries.standing_of(db, items=items)
        by_item = [queries.lock_and_standing(db, item=item)[0] for item in items]
    finally:
        db.rollback()

    assert by_regency == by_item


def test_text_with_tabs_line_ends_backslashes_and_quotes_is_stored_as_sent(client, db, office, reader):
    awkward = 'Line one\nline two\r\n\ttabbed \\N not null, C:\\data\\, "quoted", \'single\', 100% done; -- not SQL'
    response = batch(client, office, [item(reference="REF\t1\\2", note=awkward), item(PALANGKA_RAYA, note="\\"),
                                      item(SERUYAN, reference="NULL", note='{"a", b}')])

    assert response.status_code == 201, response.get_json()
    first, second, third = (client.get(f"/v1/submissions/{i['id']}", headers=reader).get_json()
                            for i in response.get_json()["items"])
    assert (first["reference"], first["note"]) == ("REF\t1\\2", awkward)
    assert (second["reference"], second["note"]) == (None, "\\")
    assert (third["reference"], third["note"]) == ("NULL", '{"a", b}')  # the text NULL, not a null
