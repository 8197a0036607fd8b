"""GET /v1/submissions: the change feed, in commit order, with filters and cursors."""
import datetime as dt
import threading

import psycopg2
import psycopg2.extras
import pytest

from service.submissions import queries

from .submissions_world import KAPUAS_HULU, LAMANDAU, PALANGKA_RAYA, SERUYAN, feed_ids, load_world


@pytest.fixture
def admin_world(db, admin):
    load_world(db)
    return admin


def submit(client, headers, code, as_of="2016-06-30", recorded=1):
    response = client.post("/v1/submissions", json={"regency_code": code, "as_of": as_of, "recorded": recorded},
                           headers=headers)
    assert response.status_code == 201
    return response.get_json()["id"]


def test_empty_feed_hands_back_a_cursor_that_stays_put(client, reader, admin_world):
    first = client.get("/v1/submissions", headers=reader).get_json()
    again = client.get("/v1/submissions", query_string={"cursor": first["next_cursor"]}, headers=reader).get_json()

    assert first["items"] == [] and first["has_more"] is False
    assert again["next_cursor"] == first["next_cursor"]


def test_follower_sees_new_changes_after_its_cursor_and_nothing_twice(client, reader, admin_world):
    a = submit(client, admin_world, LAMANDAU)
    page = client.get("/v1/submissions", headers=reader).get_json()
    b = submit(client, admin_world, PALANGKA_RAYA)

    later = client.get("/v1/submissions", query_string={"cursor": page["next_cursor"]}, headers=reader).get_json()
    idle = client.get("/v1/submissions", query_string={"cursor": later["next_cursor"]}, headers=reader).get_json()

    assert [i["id"] for i in page["items"]] == [a]
    assert [i["id"] for i in later["items"]] == [b]
    assert idle["items"] == [] and idle["next_cursor"] == later["next_cursor"]


def test_small_pages_link_to_the_next(client, reader, admin_world):
    ids = [submit(client, admin_world, LAMANDAU, as_of=f"2016-06-{d:02d}", recorded=d) for d in range(1, 6)]

    first = client.get("/v1/submissions", query_string={"limit": 2}, headers=reader)

    assert first.get_json()["has_more"] is True
    assert "rel=\"next\"" in first.headers["Link"] and "limit=2" in first.headers["Link"]
    assert [i for i, _ in feed_ids(client, reader)] == ids


def test_retraction_is_a_change_at_its_own_position(client, reader, admin_world):
    a = submit(client, admin_world, LAMANDAU)
    b = submit(client, admin_world, PALANGKA_RAYA)
    client.post(f"/v1/submissions/{a}/retract", json={"reason": "wrong day"}, headers=admin_world)

    items = client.get("/v1/submissions", headers=reader).get_json()["items"]

    assert [(i["id"], i["change"], i["status"]) for i in items] == [
        (a, "created", "retracted"), (b, "created", "effective"), (a, "retracted", "retracted"),
    ]


def test_every_change_names_its_stored_submission_without_a_foreign_key(client, db, admin_world):
    """Migration 0004 dropped the per-row foreign key; the writes alone must keep what it held."""
    single = submit(client, admin_world, LAMANDAU)
    batch = client.post("/v1/submissions/batch", headers=admin_world, json={"items": [
        {"regency_code": code, "as_of": "2016-07-31", "recorded": 5} for code in (KAPUAS_HULU, SERUYAN)]})
    client.post(f"/v1/submissions/{single}/retract", json={"reason": "typo"}, headers=admin_world)

    assert batch.status_code == 201
    with db, db.cursor() as cur:
        cur.execute("""
            SELECT c.kind, c.submission_id, c.regency_code = s.regency_code AND c.as_of = s.as_of AS same
              FROM submission_change c LEFT JOIN submission s ON s.id = c.submission_id
             ORDER BY c.position""")
        changes = [(r["kind"], str(r["submission_id"]), r["same"]) for r in cur.fetchall()]
    batch_ids = [item["id"] for item in batch.get_json()["items"]]
    assert changes == [("created", single, True), *[("created", i, True) for i in batch_ids],
                       ("retracted", single, True)]


def test_filters_narrow_the_feed_without_reordering_it(client, reader, admin_world):
    lamandau_june = submit(client, admin_world, LAMANDAU, as_of="2016-06-30")
    kapuas = submit(client, admin_world, KAPUAS_HULU, as_of="2016-06-30")
    seruyan = submit(client, admin_world, SERUYAN, as_of="2016-05-31")
    lamandau_july = submit(client, admin_world, LAMANDAU, as_of="2016-07-31")

    def ids(**params):
        return [i for i, _ in feed_ids(client, reader, **params)]

    assert ids(regency=LAMANDAU) == [lamandau_june, lamandau_july]
    assert ids(province="62") == [lamandau_june, seruyan, lamandau_july]
    assert ids(province="61") == [kapuas]
    assert ids(as_of_from="2016-06-01", as_of_to="2016-06-30") == [lamandau_june, kapuas]
    assert ids(as_of_from="2016-07-01") == [lamandau_july]


def test_filtered_follower_cursor_moves_past_changes_it_does_not_want(client, reader, admin_world):
    submit(client, admin_world, KAPUAS_HULU)
    page = client.get("/v1/submissions", query_string={"province": "62"}, headers=reader).get_json()
    lamandau = submit(client, admin_world, LAMANDAU)

    later = client.get("/v1/submissions", query_string={"province": "62", "cursor": page["next_cursor"]},
                       headers=reader).get_json()

    assert page["items"] == []
    assert [i["id"] for i in later["items"]] == [lamandau]


@pytest.mark.parametrize("params, status, pointer", [
    ({"cursor": "not-ours"}, 422, "cursor"),
    ({"cursor": "LTE"}, 422, "cursor"),  # -1
    ({"limit": 0}, 422, "limit"),
    ({"limit": 1001}, 422, "limit"),
    ({"regency": "6209"}, 422, "regency"),
    ({"province": "6"}, 422, "province"),
    ({"as_of_from": "2016-02-30"}, 422, "as_of_from"),
    ({"since": "2016"}, 400, "since"),
])
def test_bad_feed_query_is_refused_by_parameter(client, reader, admin_world, params, status, pointer):
    response = client.get("/v1/submissions", query_string=params, headers=reader)

    assert response.status_code == status
    assert [e["pointer"] for e in response.get_json()["errors"]] == [pointer]


def test_feed_needs_a_key_unless_public_read(make_app, admin_world):
    assert make_app().test_client().get("/v1/submissions").status_code == 401
    assert make_app(public_read=True).test_client().get("/v1/submissions").status_code == 200


def _connect(url):
    return psycopg2.connect(url, cursor_factory=psycopg2.extras.RealDictCursor)


def test_a_change_committed_late_is_not_left_behind_a_handed_out_cursor(client, reader, database_url, admin_world):
    """Writer A takes the lower submission id but commits after writer B: the feed still gives A after B."""
    day = dt.date(2016, 6, 30)
    writer_a, writer_b = _connect(database_url), _connect(database_url)
    try:
        stored_a = queries.insert_submissions(
            writer_a, items=[{"regency_code": LAMANDAU, "as_of": day, "recorded": 1, "warnings": []}], key_id=None)
        stored_b = queries.insert_submissions(
            writer_b, items=[{"regency_code": SERUYAN, "as_of": day, "recorded": 2, "warnings": []}], key_id=None)
        id_a, id_b = stored_a[(LAMANDAU, day)], stored_b[(SERUYAN, day)]
        assert id_a < id_b
        queries.append_changes(writer_b, kind="created", changes=[(SERUYAN, day, id_b)])
        writer_b.commit()

        seen_first = client.get("/v1/submissions", headers=reader).get_json()
        queries.append_changes(writer_a, kind="created", changes=[(LAMANDAU, day, id_a)])
        writer_a.commit()
        seen_later = client.get("/v1/submissions", query_string={"cursor": seen_first["next_cursor"]},
                                headers=reader).get_json()
    finally:
        writer_a.close()
        writer_b.close()

    assert [i["id"] for i in seen_first["items"]] == [str(id_b)]
    assert [i["id"] for i in seen_later["items"]] == [str(id_a)]


def test_a_reader_never_sees_positions_of_a_writer_that_has_not_committed(client, reader, database_url, admin_world):
    """While A holds positions uncommitted, B waits for the counter; the reader sees neither until A commits."""
    day = dt.date(2016, 6, 30)
    writer_a, writer_b = _connect(database_url), _connect(database_url)
    try:
        id_a = queries.insert_submissions(
            writer_a, items=[{"regency_code": LAMANDAU, "as_of": day, "recorded": 1, "warnings": []}],
            key_id=None)[(LAMANDAU, day)]
        queries.append_changes(writer_a, kind="created", changes=[(LAMANDAU, day, id_a)])
        id_b = queries.insert_submissions(
            writer_b, items=[{"regency_code": SERUYAN, "as_of": day, "recorded": 2, "warnings": []}],
            key_id=None)[(SERUYAN, day)]

        def b_appends_and_commits():
            queries.append_changes(writer_b, kind="created", changes=[(SERUYAN, day, id_b)])
            writer_b.commit()

        b = threading.Thread(target=b_appends_and_commits)
        b.start()
        b.join(timeout=0.5)
        assert b.is_alive(), "B took a feed position while A's were uncommitted"
        while_a_open = client.get("/v1/submissions", headers=reader).get_json()
        writer_a.commit()
        b.join(timeout=10)
    finally:
        writer_a.close()
        writer_b.close()

    after = client.get("/v1/submissions", query_string={"cursor": while_a_open["next_cursor"]},
                       headers=reader).get_json()
    assert while_a_open["items"] == []
    assert [i["id"] for i in after["items"]] == [str(id_a), str(id_b)]
