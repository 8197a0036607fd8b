"""Every error is problem+json, and none tells a client anything about the service's insides."""
import logging

import pytest
from flask.testing import FlaskClient

from service import db as service_db
from service.auth import requires

from .conftest import count_rows

INTERNALS = ("Traceback", "File \"", "psycopg2", "RuntimeError", "UndefinedTable", "SELECT", "no_such_table",
             "relation", "secret-internal-detail", "service/", ".py")


@pytest.fixture
def crashing_app(make_app):
    """The real app plus throwaway routes that fail in the ways a bug would."""
    app = make_app(statement_timeout_ms=100)

    @app.get("/v1/test-crash")
    @requires("reader")
    def crash():
        raise RuntimeError("secret-internal-detail at /srv/service/x.py")

    @app.get("/v1/test-bad-sql")
    @requires("reader")
    def bad_sql():
        with service_db.transaction() as conn, conn.cursor() as cur:
            cur.execute("SELECT secret FROM no_such_table")

    @app.get("/v1/test-slow-sql")
    @requires("reader")
    def slow_sql():
        with service_db.transaction() as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_sleep(5) FROM (SELECT 'secret-internal-detail') AS no_such_table")

    return app


def assert_reveals_nothing(response):
    text = response.get_data(as_text=True)
    for internal in INTERNALS:
        assert internal not in text, f"{internal!r} reached the client: {text}"


def test_an_unexpected_exception_is_a_bare_500_problem(crashing_app, reader, caplog):
    client = FlaskClient(crashing_app)  # the throwaway route is not in the spec
    with caplog.at_level(logging.ERROR, logger="service.errors"):
        response = client.get("/v1/test-crash", headers={**reader, "X-Request-ID": "crash-1"})
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert body["type"] == "about:blank" and body["status"] == 500
    assert body["request_id"] == "crash-1" and response.headers["X-Request-ID"] == "crash-1"
    assert_reveals_nothing(response)
    # The operator still has the whole story in the log.
    assert "secret-internal-detail" in caplog.text and "Traceback" in caplog.text


def test_a_database_error_text_never_reaches_the_client(crashing_app, reader):
    response = FlaskClient(crashing_app).get("/v1/test-bad-sql", headers=reader)
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert_reveals_nothing(response)


def test_a_statement_timeout_is_503_with_retry_after_and_no_sql(crashing_app, reader):
    response = FlaskClient(crashing_app).get("/v1/test-slow-sql", headers=reader)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert response.json["type"] == "urn:ktpel-coverage:problem:statement-timeout"
    assert_reveals_nothing(response)


def test_the_database_being_down_is_503_with_retry_after_and_no_connection_details():
    from service import create_app
    from service.config import Settings

    app = create_app(Settings(database_url="postgresql://ktpel:pw-secret@127.0.0.1:9/nowhere",
                              connect_timeout_seconds=1, pool_timeout_seconds=1))
    try:
        token = "ktpel_abcdefgh_" + "x" * 43
        response = app.test_client().get("/v1/provinces", headers={"Authorization": f"Bearer {token}"})
    finally:
        app.extensions["ktpel_pools"]["write"].closeall()
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    text = response.get_data(as_text=True)
    assert "pw-secret" not in text and "127.0.0.1" not in text and "nowhere" not in text
    assert_reveals_nothing(response)


def test_every_problem_carries_the_request_id(client, reader):
    response = client.get("/v1/provinces?nope=1", headers={**reader, "X-Request-ID": "abc-123"})
    assert response.status_code == 400
    assert response.json["request_id"] == "abc-123"


def test_an_unprintable_request_id_is_replaced(client):
    response = client.get("/healthz", headers={"X-Request-ID": "a\tb"})
    assert response.headers["X-Request-ID"] not in ("", "a\tb")


def test_a_request_id_is_made_when_none_is_sent_and_echoed_when_one_is(client):
    made = {client.get("/healthz").headers["X-Request-ID"] for _ in range(3)}
    assert len(made) == 3 and all(made)
    assert client.get("/healthz", headers={"X-Request-ID": "lb-42"}).headers["X-Request-ID"] == "lb-42"


def test_head_needs_a_token_like_get(client, reader):
    assert client.head("/v1/provinces").status_code == 401
    assert client.head("/v1/provinces", headers=reader).status_code == 200


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json", '{"items": [{"regency_code": "62.09", "as_of": "2016-06-30", "recorded": 1, '
                         '"note": "a\\u0000b"}]}'),
    ("text/csv", "regency_code,as_of,recorded,reference,note\n62.09,2016-06-30,1,x\x00y,\n"),
    ("application/json", '{"items": [{"regency_code": "62.09", "as_of": "2016-06-30", "recorded": 1, '
                         '"note": "\\ud83d"}]}'),
])
def test_a_nul_character_or_unpaired_surrogate_in_a_batch_is_422_not_a_crash(client, db, make_key, content_type, body):
    from service.regions import queries as regions

    with db:
        regions.put_province(db, code="62", name="Kalimantan Tengah")
        regions.put_regency(db, code="62.09", name="Lamandau", kind="kabupaten", province_code="62")
    response = client.post("/v1/submissions/batch", data=body, content_type=content_type,
                           headers=make_key("submitter", "62"))
    assert response.status_code == 422
    assert response.json["errors"][0]["pointer"].startswith("/items/0/")
    assert count_rows(db, "submission") == 0


ODD_VALUES = ("%00", "%D9%A6%D9%A2", "62%0A", "x" * 300, "-1", "99999999999999999999", "2016-02-30", "%25", "")


def test_no_odd_path_or_query_value_makes_a_500(app, client, db, make_key):
    """Every /v1 route from the route table, every query parameter the spec names, fed odd values."""
    import re

    import yaml

    from .contract import SPEC
    from .test_auth import v1_operations

    spec = yaml.safe_load(SPEC.read_text())
    admin = make_key("admin")
    crashes = []
    for method, rule, _, _ in v1_operations(app):
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)
        operation = spec["paths"].get(path, {}).get(method.lower(), {})
        query_names = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]
        for odd in ODD_VALUES:
            urls = [re.sub(r"<[^>]+>", odd or "x", rule)]
            if method == "GET":
                sample = re.sub(r"<[^>]+>", "62", rule)
                urls += [f"{sample}?{name}={odd}" for name in query_names]
            for url in urls:
                response = FlaskClient(app).open(url, method=method, headers=admin, json={})
                if response.status_code >= 500:
                    crashes.append((method, url, response.status_code))
    assert not crashes, crashes


ODD_JSON = ("1e400", "-1e400", "1e-400", "100000000000000000000000000000", "-1", "0", '""', '"x"', "[]", "{}",
            "null", "true", '"' + "x" * 5000 + '"', '"2016-02-30"', '"\\u0662\\u0660\\u0661\\u0666-01-01"')


def test_no_odd_json_value_in_any_field_makes_a_500(app, db, make_key):
    """Every write of the route table: the spec's example body with one field at a time made odd."""
    import json
    import re

    import yaml

    from service.regions import queries as regions

    from .contract import SPEC
    from .test_auth import v1_operations

    with db:
        regions.put_province(db, code="62", name="Kalimantan Tengah")
        regions.put_regency(db, code="62.09", name="Lamandau", kind="kabupaten", province_code="62")
    spec = yaml.safe_load(SPEC.read_text())

    def resolve(schema):
        while "$ref" in schema:
            node = spec
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    admin = make_key("admin")
    crashes, tried = [], 0
    for method, rule, _, _ in v1_operations(app):
        if method == "GET":
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)
        content = spec["paths"].get(path, {}).get(method.lower(), {}).get("requestBody", {}).get("content", {})
        media = content.get("application/json")
        if not media:
            continue
        schema = resolve(media["schema"])
        example = media.get("example") or next(iter(media.get("examples", {}).values()), {}).get("value", {})
        assert example, f"{method} {rule}: the spec gives no example body"
        url = re.sub(r"<(?:[^:>]+:)?effective_from>", "2016-01-01", rule)
        url = re.sub(r"<[^>]+>", "62.09" if "regencies" in rule else "62" if "provinces" in rule else "1", url)
        items = schema.get("properties", {}).get("items")
        if items and items.get("type") == "array":  # a batch: make each field of its first item odd
            fields = sorted(resolve(items["items"]).get("properties", {}))
            base = (example.get("items") or [{}])[0]

            def wrap(item):
                return {"items": [item]}
        else:
            fields = sorted(schema.get("properties", {}))
            base = example

            def wrap(item):
                return item
        for field in fields:
            for odd in ODD_JSON:
                raw = json.dumps(wrap({**base, field: "ODD"})).replace('"ODD"', odd)
                response = FlaskClient(app).open(url, method=method, headers=admin, data=raw,
                                                 content_type="application/json")
                tried += 1
                if response.status_code >= 500:
                    crashes.append((method, url, raw[:120], response.status_code))
    assert tried > 100
    assert not crashes, crashes
