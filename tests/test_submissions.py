"""POST /v1/submissions, GET /v1/submissions/{id} and retraction, against a real PostgreSQL."""
import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.clock import today
from service.seed import seed_kalteng_2016

from .conftest import count_rows
from .submissions_world import KAPUAS_HULU, LAMANDAU, MURUNG_RAYA, PALANGKA_RAYA, feed_ids, load_world


@pytest.fixture
def world(db):
    load_world(db)


@pytest.fixture
def lamandau_office(make_key, world):
    return make_key("submitter", LAMANDAU, name="Disdukcapil Lamandau")


@pytest.fixture
def kalteng_office(make_key, world):
    return make_key("submitter", "62", name="Disdukcapil Kalimantan Tengah")


def submit(client, headers, **fields):
    body = {"regency_code": LAMANDAU, "as_of": "2016-06-30", "recorded": 62_150, **fields}
    return client.post("/v1/submissions", json=body, headers=headers)


def test_new_submission_is_created_with_location_status_and_submitter(client, lamandau_office, reader):
    response = submit(client, lamandau_office, reference="LMD-2016-06", note="Semester I")

    assert response.status_code == 201
    created = response.get_json()
    assert response.headers["Location"].endswith(f"/v1/submissions/{created['id']}")
    assert created["status"] == "effective"
    assert created["recorded"] == 62_150 and created["as_of"] == "2016-06-30"
    assert created["reference"] == "LMD-2016-06"
    assert created["submitted_by"]["name"] == "Disdukcapil Lamandau"
    assert created["retracted_at"] is None and created["warnings"] == []
    read = client.get(f"/v1/submissions/{created['id']}", headers=reader)
    assert read.status_code == 200
    assert read.get_json() == created


def test_a_post_answer_carries_no_etag_but_the_submission_read_back_does(client, lamandau_office, reader):
    created = submit(client, lamandau_office)
    retracted = client.post(f"/v1/submissions/{created.get_json()['id']}/retract", json={"reason": "typo"},
                            headers=lamandau_office)

    assert created.status_code == 201 and "ETag" not in created.headers
    assert retracted.status_code == 200 and "ETag" not in retracted.headers
    read = client.get(created.headers["Location"], headers=reader)
    again = client.get(created.headers["Location"], headers={**reader, "If-None-Match": read.headers["ETag"]})
    assert again.status_code == 304


def test_every_write_is_an_audit_event_with_the_key(client, db, lamandau_office, admin):
    created = submit(client, lamandau_office).get_json()
    client.post(f"/v1/submissions/{created['id']}/retract", json={"reason": "typo"}, headers=lamandau_office)

    events = client.get("/v1/audit-events", headers=admin).get_json()["items"]
    actions = [(e["action"], e["resource"], e["actor_name"]) for e in events]
    assert actions == [
        ("submission.create", f"/v1/submissions/{created['id']}", "Disdukcapil Lamandau"),
        ("submission.retract", f"/v1/submissions/{created['id']}", "Disdukcapil Lamandau"),
    ]
    assert events[1]["before"]["status"] == "effective" and events[1]["after"]["status"] == "retracted"


def test_retry_without_idempotency_key_creates_no_duplicate(client, db, lamandau_office, reader):
    first = submit(client, lamandau_office)
    again = submit(client, lamandau_office)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert count_rows(db, "submission") == 1
    assert feed_ids(client, reader) == [(first.get_json()["id"], "created")]


def test_correction_supersedes_and_retracting_it_restores_the_earlier_count(client, lamandau_office, reader):
    original = submit(client, lamandau_office, recorded=60_000).get_json()
    correction = submit(client, lamandau_office, recorded=62_150).get_json()

    def status_of(submission):
        return client.get(f"/v1/submissions/{submission['id']}", headers=reader).get_json()["status"]

    assert (status_of(original), status_of(correction)) == ("superseded", "effective")
    retracted = client.post(f"/v1/submissions/{correction['id']}/retract",
                            json={"reason": "Counted the school outreach twice."}, headers=lamandau_office)
    assert retracted.status_code == 200
    assert retracted.get_json()["status"] == "retracted"
    assert retracted.get_json()["retraction_reason"] == "Counted the school outreach twice."
    assert (status_of(original), status_of(correction)) == ("effective", "retracted")
    # The original count is effective again, so resubmitting it stores nothing.
    assert submit(client, lamandau_office, recorded=60_000).status_code == 200


def test_retracting_twice_is_409_and_records_nothing_more(client, db, lamandau_office, reader):
    created = submit(client, lamandau_office).get_json()
    path = f"/v1/submissions/{created['id']}/retract"
    assert client.post(path, json={"reason": "wrong regency"}, headers=lamandau_office).status_code == 200

    again = client.post(path, json={"reason": "again"}, headers=lamandau_office)

    assert again.status_code == 409
    assert again.get_json()["type"] == "urn:ktpel-coverage:problem:already-retracted"
    assert feed_ids(client, reader) == [(created["id"], "created"), (created["id"], "retracted")]
    assert count_rows(db, "audit_event") == 2


@pytest.mark.parametrize("body, pointer", [
    ({}, "/reason"),
    ({"reason": ""}, "/reason"),
    ({"reason": "x" * 501}, "/reason"),
    ({"reason": "ok", "why": "extra"}, "/why"),
])
def test_retraction_needs_a_reason_of_1_to_500_characters(client, lamandau_office, reader, body, pointer):
    created = submit(client, lamandau_office).get_json()

    response = client.post(f"/v1/submissions/{created['id']}/retract", json=body, headers=lamandau_office)

    assert response.status_code == 422
    assert [e["pointer"] for e in response.get_json()["errors"]] == [pointer]
    assert client.get(f"/v1/submissions/{created['id']}", headers=reader).get_json()["status"] == "effective"
    assert feed_ids(client, reader) == [(created["id"], "created")]


def test_retraction_outside_scope_is_403_and_unknown_is_404(client, make_key, lamandau_office, reader):
    created = submit(client, lamandau_office).get_json()
    palangka_office = make_key("submitter", PALANGKA_RAYA)

    refused = client.post(f"/v1/submissions/{created['id']}/retract", json={"reason": "x"}, headers=palangka_office)
    missing = client.post("/v1/submissions/999999/retract", json={"reason": "x"}, headers=lamandau_office)

    assert (refused.status_code, missing.status_code) == (403, 404)
    assert client.get(f"/v1/submissions/{created['id']}", headers=reader).get_json()["status"] == "effective"


_FUTURE = (today() + dt.timedelta(days=1)).isoformat()


@pytest.mark.parametrize("fields, pointer", [
    ({"recorded": 62150.0}, "/recorded"),
    ({"recorded": 62150.5}, "/recorded"),
    ({"recorded": "62150"}, "/recorded"),
    ({"recorded": True}, "/recorded"),
    ({"recorded": None}, "/recorded"),
    ({"recorded": -1}, "/recorded"),
    ({"recorded": 2**31}, "/recorded"),
    ({"as_of": _FUTURE}, "/as_of"),
    ({"as_of": "2010-12-31"}, "/as_of"),
    ({"as_of": "2016-02-30"}, "/as_of"),
    ({"as_of": "30/06/2016"}, "/as_of"),
    ({"as_of": 20160630}, "/as_of"),
    ({"regency_code": "6209"}, "/regency_code"),
    ({"regency_code": 62.09}, "/regency_code"),
    ({"reference": "r" * 101}, "/reference"),
    ({"note": "n" * 1001}, "/note"),
    ({"submitted_by": "me"}, "/submitted_by"),
    ({"status": "effective"}, "/status"),
])
def test_invalid_field_is_422_with_its_pointer_and_nothing_is_stored(client, db, admin, reader, world, fields,
                                                                     pointer):
    response = submit(client, admin, **fields)

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert [e["pointer"] for e in response.get_json()["errors"]] == [pointer]
    assert count_rows(db, "submission") == 0
    assert feed_ids(client, reader) == []


def test_missing_fields_and_every_other_problem_are_reported_at_once(client, db, admin, reader, world):
    response = client.post("/v1/submissions", json={"as_of": "2016-13-01", "recorded": 1.5, "colour": "red"},
                           headers=admin)

    assert response.status_code == 422
    assert sorted(e["pointer"] for e in response.get_json()["errors"]) == [
        "/as_of", "/colour", "/recorded", "/regency_code",
    ]
    assert feed_ids(client, reader) == []


def test_unknown_regency_is_422_and_nothing_is_stored(client, db, admin, reader, world):
    response = submit(client, admin, regency_code="62.99")

    assert response.status_code == 422
    assert response.get_json()["errors"] == [{"pointer": "/regency_code", "detail": "There is no regency 62.99."}]
    assert count_rows(db, "submission") == 0


@pytest.mark.parametrize("data, content_type, status", [
    ('{"regency_code": "62.09",', "application/json", 400),
    ("regency_code=62.09", "application/x-www-form-urlencoded", 415),
    ('["62.09", "2016-06-30", 1]', "application/json", 422),
    ('{"note": "' + "x" * (1024 * 1024) + '"}', "application/json", 413),
])
def test_malformed_wrong_type_or_oversized_body_is_refused_and_nothing_is_stored(client, db, admin, world, data,
                                                                                content_type, status):
    response = client.post("/v1/submissions", data=data, content_type=content_type, headers=admin)

    assert response.status_code == status
    assert count_rows(db, "submission") == 0


_BODY = '"regency_code": "62.09", "as_of": "2016-06-30"'


@pytest.mark.parametrize("data, status, pointers", [
    # The bodies a plainly valid one is told from (web.load_plain_body): each is read by the
    # standard library's parser, whose answer orjson's would not be.
    ("{" + _BODY + ', "recorded": 5, "note": "a\\u0000b"}', 422, ["/note"]),
    # An unpaired surrogate: the standard parser takes it, PostgreSQL's UTF-8 cannot hold it.
    ("{" + _BODY + ', "recorded": 5, "note": "\\ud800"}', 422, ["/note"]),
    ("{" + _BODY + ', "recorded": 5, "reference": "x\\uDFFF", "note": "\\ude00\\ud83d"}', 422,
     ["/note", "/reference"]),
    ("{" + _BODY + ', "recorded": 123456789012345678901234567890}', 422, ["/recorded"]),
    ("{" + _BODY + ', "recorded": 1e400}', 422, ["/recorded"]),
    ("{" + _BODY + ', "recorded": 5.0}', 422, ["/recorded"]),
    ("{" + _BODY + ', "recorded": NaN}', 400, None),
    ("\ufeff{" + _BODY + ', "recorded": 5}', 400, None),
    ("{" + _BODY + ', "recorded": 5,}', 400, None),
])
def test_a_body_orjson_would_read_otherwise_gets_the_standard_answer_and_nothing_is_stored(
        client, db, admin, reader, world, data, status, pointers):
    response = client.post("/v1/submissions", data=data.encode(), content_type="application/json", headers=admin)

    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    if pointers is not None:
        assert [e["pointer"] for e in response.get_json()["errors"]] == pointers
    assert count_rows(db, "submission") == 0
    assert feed_ids(client, reader) == []


def test_a_surrogate_pair_written_as_escapes_is_the_character_it_stands_for(client, admin, reader, world):
    data = "{" + _BODY + ', "recorded": 62150, "note": "Terima kasih \\ud83d\\ude4f"}'

    response = client.post("/v1/submissions", data=data, content_type="application/json", headers=admin)

    assert response.status_code == 201
    stored = client.get(response.headers["Location"], headers=reader).get_json()
    assert stored["note"] == "Terima kasih \U0001f64f"


def test_a_repeated_field_counts_as_its_last_value_as_json_parsers_do(client, admin, world):
    data = "{" + _BODY + ', "recorded": -1, "recorded": 62150}'

    response = client.post("/v1/submissions", data=data, content_type="application/json", headers=admin)

    assert response.status_code == 201
    assert response.get_json()["recorded"] == 62_150


def test_submitter_writes_only_within_its_scope(client, db, lamandau_office, kalteng_office, reader):
    assert submit(client, lamandau_office, regency_code=PALANGKA_RAYA).status_code == 403
    assert submit(client, kalteng_office, regency_code=KAPUAS_HULU).status_code == 403
    assert submit(client, reader).status_code == 403
    assert client.post("/v1/submissions", json={}).status_code == 401
    assert count_rows(db, "submission") == 0

    assert submit(client, kalteng_office, regency_code=PALANGKA_RAYA).status_code == 201


def _codes(response):
    return [w["code"] for w in response.get_json()["warnings"]]


def test_warnings_flag_decrease_excess_backfill_and_missing_population(client, admin, world):
    assert _codes(submit(client, admin, as_of="2016-06-30", recorded=62_150)) == []
    decrease = submit(client, admin, as_of="2016-07-31", recorded=61_000)
    excess = submit(client, admin, as_of="2016-08-31", recorded=70_000)
    backfill = submit(client, admin, as_of="2016-05-31", recorded=60_000)
    no_population = submit(client, admin, regency_code=MURUNG_RAYA, recorded=10)

    assert _codes(decrease) == ["decrease"]
    assert "62150" in decrease.get_json()["warnings"][0]["detail"]
    assert "2016-06-30" in decrease.get_json()["warnings"][0]["detail"]
    assert _codes(excess) == ["exceeds_eligible_population"]
    assert "67870" in excess.get_json()["warnings"][0]["detail"]
    assert _codes(backfill) == ["backfill"]
    assert "2016-08-31" in backfill.get_json()["warnings"][0]["detail"]
    assert _codes(no_population) == ["no_eligible_population"], no_population.get_json()
    assert all(r.status_code == 201 for r in (decrease, excess, backfill, no_population))


def test_unknown_or_malformed_submission_id_is_404(client, reader, world):
    assert client.get("/v1/submissions/424242", headers=reader).status_code == 404
    assert client.get("/v1/submissions/abc", headers=reader).status_code == 404
    assert client.get(f"/v1/submissions/{2**63}", headers=reader).status_code == 404


def test_the_batch_path_is_never_taken_for_a_submission_id(client, reader):
    response = client.get("/v1/submissions/batch", headers=reader)
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"] and "GET" not in response.headers["Allow"]
    assert response.mimetype == "application/problem+json"


def test_seeded_counts_are_in_the_feed_without_a_submitter(client, db, reader):
    with db:
        seed_kalteng_2016(db)
    with db:
        seed_kalteng_2016(db)  # idempotent: the second run stores nothing

    page = client.get("/v1/submissions", query_string={"limit": 100}, headers=reader).get_json()

    assert len(page["items"]) == 14 == count_rows(db, "submission")
    assert {item["submitted_by"] for item in page["items"]} == {None}
    assert sum(item["recorded"] for item in page["items"]) == 1_311_326


def test_a_correction_is_compared_with_the_earlier_date_not_with_the_count_it_corrects(client, admin, world):
    submit(client, admin, as_of="2016-06-30", recorded=60_000)
    submit(client, admin, as_of="2016-07-31", recorded=62_000)

    lower_but_above_june = submit(client, admin, as_of="2016-07-31", recorded=61_000)
    below_june = submit(client, admin, as_of="2016-07-31", recorded=59_000)
    first_date_corrected = submit(client, admin, as_of="2016-06-30", recorded=50_000)

    assert _codes(lower_but_above_june) == []
    assert _codes(below_june) == ["decrease"] and "60000" in below_june.get_json()["warnings"][0]["detail"]
    assert _codes(first_date_corrected) == ["backfill"]  # lower than what it corrects, yet no decrease


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from([LAMANDAU, MURUNG_RAYA]), st.integers(0, 4),
                                st.integers(60_000, 70_000), st.booleans()), min_size=1, max_size=10))
def test_a_single_submission_is_judged_as_the_same_item_of_a_batch_would_be(client, db, admin, world, steps):
    # The single path reads the standing with a query of its own (queries.lock_and_standing).
    with db, db.cursor() as cur:
        cur.execute("DELETE FROM submission_change; DELETE FROM submission")
    for code, day, recorded, retract in steps:
        item = {"regency_code": code, "as_of": (dt.date(2016, 6, 1) + dt.timedelta(days=day)).isoformat(),
                "recorded": recorded}
        judged = client.post("/v1/submissions/batch?dry_run=true", json={"items": [item]}, headers=admin)
        [as_batch_item] = judged.get_json()["items"]

        single = client.post("/v1/submissions", json=item, headers=admin)

        assert single.status_code == {"created": 201, "unchanged": 200}[as_batch_item["status"]]
        assert single.get_json()["warnings"] == as_batch_item["warnings"]
        if retract and single.status_code == 201:
            path = f"/v1/submissions/{single.get_json()['id']}/retract"
            assert client.post(path, json={"reason": "test"}, headers=admin).status_code == 200
