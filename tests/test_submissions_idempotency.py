"""Idempotency-Key on submissions: replay, reuse with another body, in flight, expiry."""
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest

from service.submissions import queries

from .conftest import count_rows
from .submissions_world import LAMANDAU, PALANGKA_RAYA, feed_ids, load_world

BODY = {"regency_code": LAMANDAU, "as_of": "2016-06-30", "recorded": 62_150}


@pytest.fixture
def office(db, make_key):
    load_world(db)
    return make_key("submitter", "62", name="Disdukcapil Kalimantan Tengah")


def post(client, headers, key, body=BODY, path="/v1/submissions"):
    return client.post(path, json=body, headers={**headers, "Idempotency-Key": key})


def test_repeat_with_the_same_key_replays_the_first_answer(client, db, office, reader):
    first = post(client, office, "report-2016-06")
    again = post(client, office, "report-2016-06")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.data == first.data
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert count_rows(db, "submission") == 1
    assert len(feed_ids(client, reader)) == 1


def test_replay_is_the_first_answer_even_after_the_submission_changed(client, db, office):
    first = post(client, office, "k1")
    client.post(f"/v1/submissions/{first.get_json()['id']}/retract", json={"reason": "x"}, headers=office)

    again = post(client, office, "k1")

    assert again.status_code == 201 and again.get_json()["status"] == "effective"
    assert count_rows(db, "submission") == 1


def test_same_key_with_another_body_is_422_and_stores_nothing(client, db, office):
    post(client, office, "k1")

    other = post(client, office, "k1", body={**BODY, "recorded": 1})

    assert other.status_code == 422
    assert other.get_json()["errors"][0]["pointer"] == "Idempotency-Key"
    assert count_rows(db, "submission") == 1


def test_same_key_while_the_first_request_is_in_flight_is_409(app, db, office, database_url):
    # Hold Lamandau's write lock, so the first request stops inside its transaction, after its claim.
    blocker = psycopg2.connect(database_url)
    with blocker.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (queries._REGENCY_LOCK_CLASS, LAMANDAU))
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, app.test_client(), office, "k1")
        _wait_for_claim(db)

        second = post(app.test_client(), office, "k1")

        blocker.rollback()
        blocker.close()
        assert first.result(timeout=10).status_code == 201
    assert second.status_code == 409
    assert second.headers["Retry-After"] == "1"
    assert count_rows(db, "submission") == 1


def _wait_for_claim(db):
    deadline = time.monotonic() + 10
    while count_rows(db, "idempotency_key") == 0:
        assert time.monotonic() < deadline, "the first request never claimed its key"
        time.sleep(0.02)


def test_keys_belong_to_one_api_key(client, db, office, make_key):
    other_office = make_key("submitter", "62")

    post(client, office, "k1")
    second = post(client, other_office, "k1", body={**BODY, "regency_code": PALANGKA_RAYA})

    assert second.status_code == 201 and "Idempotent-Replayed" not in second.headers
    assert count_rows(db, "submission") == 2


def test_a_key_older_than_24_hours_is_forgotten(client, db, office):
    post(client, office, "k1")
    with db, db.cursor() as cur:
        cur.execute("UPDATE idempotency_key SET created_at = now() - interval '25 hours'")

    reused = post(client, office, "k1", body={**BODY, "recorded": 62_151})

    assert reused.status_code == 201 and "Idempotent-Replayed" not in reused.headers
    assert count_rows(db, "idempotency_key") == 1


def test_a_failed_request_releases_its_key(client, db, office):
    refused = post(client, office, "k1", body={**BODY, "recorded": -1})
    accepted = post(client, office, "k1")

    assert (refused.status_code, accepted.status_code) == (422, 201)


def test_batch_and_retraction_replay_too(client, db, office):
    batch = {"items": [BODY]}
    first = post(client, office, "b1", body=batch, path="/v1/submissions/batch")
    again = post(client, office, "b1", body=batch, path="/v1/submissions/batch")
    path = f"/v1/submissions/{first.get_json()['items'][0]['id']}/retract"
    retracted = post(client, office, "r1", body={"reason": "x"}, path=path)
    retracted_again = post(client, office, "r1", body={"reason": "x"}, path=path)

    assert (first.status_code, again.status_code) == (201, 201) and again.data == first.data
    assert (retracted.status_code, retracted_again.status_code) == (200, 200)
    assert retracted_again.headers["Idempotent-Replayed"] == "true"
    assert count_rows(db, "submission") == 1


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_key_must_be_1_to_255_characters(client, db, office, key):
    response = post(client, office, key)

    assert response.status_code == 422
    assert count_rows(db, "submission") == 0


def test_dry_run_with_a_key_is_replayed_not_left_in_flight(client, db, office):
    batch = {"items": [BODY]}
    first = post(client, office, "d1", body=batch, path="/v1/submissions/batch?dry_run=true")
    again = post(client, office, "d1", body=batch, path="/v1/submissions/batch?dry_run=true")

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count_rows(db, "submission") == 0
