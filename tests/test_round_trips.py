"""How many round trips to PostgreSQL an answer costs, counted on the wire (tests/wire_count.py).

Each statement is a round trip, and round trips are most of what a small answer costs: these
tests keep the counts from creeping up. bench/RESULTS.md has what they are worth in time.
"""
import pytest

from service.clock import today

from .submissions_world import LAMANDAU, load_world
from .wire_count import QueryCounter


@pytest.fixture
def wire(database_url):
    counter = QueryCounter(database_url)
    yield counter
    counter.close()


@pytest.fixture
def counted_client(make_app, wire, db):
    load_world(db)
    return make_app(database_url=wire.url).test_client()


def transaction_control(queries):
    return [q for q in queries if q.strip().upper() in ("BEGIN", "COMMIT", "ROLLBACK")]


@pytest.mark.parametrize("path", [
    "/v1/coverage",
    "/v1/provinces/62/coverage",
    "/v1/regencies/62.09/coverage",
    "/v1/regencies/62.09/coverage/history?from=2016-01-01&to=2016-12-31&interval=month",
    "/v1/submissions?limit=10",
    "/v1/regencies/62.09",
])
def test_a_read_answer_sends_no_begin_or_commit(counted_client, wire, reader, path):
    counted_client.get(path, headers=reader)  # the first request also opens the connection
    wire.take()

    response = counted_client.get(path, headers=reader)

    assert response.status_code == 200
    sent = wire.take()
    assert sent and transaction_control(sent) == []


@pytest.mark.parametrize("path, statement", [
    ("/v1/provinces/62/coverage", "province_as_of"),
    ("/v1/coverage", "nation_as_of"),  # the target with the provinces
    ("/v1/regencies/62.09/coverage", "regency_as_of"),  # the target and the report 90 days before with it
])
def test_a_coverage_answer_is_one_round_trip_that_carries_the_key_check(counted_client, wire, reader, path,
                                                                        statement):
    counted_client.get(path, headers=reader)
    first = wire.take()
    assert first[1].startswith("EXECUTE active_key_")  # a key this process has not read: checked on its own
    counted_client.get(path, headers=reader)  # the key check is prepared on this connection
    wire.take()

    assert counted_client.get(path, headers=reader).status_code == 200

    (sent,) = wire.take()
    key_check, answer = sent.split(";\n")
    assert key_check.startswith("EXECUTE key_still_good_") and answer.startswith(f"EXECUTE {statement}_")


def test_a_statement_is_prepared_once_per_connection(counted_client, wire, reader):
    assert counted_client.get("/v1/provinces/62/coverage", headers=reader).status_code == 200
    first = wire.take()
    assert counted_client.get("/v1/provinces/94/coverage", headers=reader).status_code == 404
    second = wire.take()

    assert counted_client.get("/v1/provinces/62/coverage", headers=reader).status_code == 200
    third = wire.take()

    prepared = [q.split()[1] for q in first + second if q.startswith("PREPARE ")]
    # The key is read on its own the first time, and checked with the answer's statement after that.
    assert [name.rsplit("_", 1)[0] for name in prepared] == ["active_key", "province_as_of", "key_still_good"]
    assert len(third) == 1 and not any(q.startswith("PREPARE") for q in third)
    assert [q.split("(")[0] for q in third[0].split(";\n")] == [f"EXECUTE {prepared[2]}", f"EXECUTE {prepared[1]}"]


def test_a_new_submission_is_two_round_trips_and_the_first_carries_the_key_check(counted_client, wire, make_key):
    office = make_key("submitter", LAMANDAU)
    body = {"regency_code": LAMANDAU, "as_of": today().isoformat(), "recorded": 60_000}
    counted_client.post("/v1/submissions", json=body, headers=office)  # prepares the statements
    counted_client.post("/v1/submissions", json={**body, "recorded": 60_002}, headers=office)  # and the key check
    wire.take()

    answer = counted_client.post("/v1/submissions", json={**body, "recorded": 60_001}, headers=office)

    assert answer.status_code == 201
    key_check_lock_and_standing, writes = wire.take()
    key_check, lock_and_standing = key_check_lock_and_standing.split(";\n", 1)
    assert key_check.startswith("EXECUTE key_still_good_")
    assert lock_and_standing.startswith("BEGIN;\nEXECUTE lock_regency_")
    assert "EXECUTE standing_probes_" in lock_and_standing
    statements = [statement.split("(")[0].rsplit("_", 1)[0] for statement in writes.split("\n;\n")]
    assert statements == ["EXECUTE insert_submission", "EXECUTE insert_audit_event", "EXECUTE append_changes", "COMMIT"]


def test_a_prepare_goes_alone_and_the_statement_after_it_carries_the_key_check(make_app, counted_client, wire,
                                                                               reader):
    assert make_app().test_client().get("/v1/provinces/62/coverage", headers=reader).status_code == 200
    wire.take()  # the process has read the key; counted_client's connections have prepared nothing yet

    assert counted_client.get("/v1/provinces/62/coverage", headers=reader).status_code == 200

    prepare_answer, prepare_check, carried = wire.take()
    assert prepare_answer.startswith("PREPARE province_as_of_") and prepare_check.startswith("PREPARE key_still_good_")
    assert [q.split("(")[0] for q in carried.split(";\n")] == [
        "EXECUTE " + prepare_check.split()[1], "EXECUTE " + prepare_answer.split()[1]]
