"""Every answer tells browsers and caches how to treat it, and no internal error text reaches a client."""
import pytest
from flask.testing import FlaskClient

from service import db

HARDENING = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def assert_hardened(response):
    for name, value in HARDENING.items():
        assert response.headers.get(name) == value, name
    assert response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("path", ["/healthz", "/openapi.yaml", "/v1/provinces", "/v1/no-such-thing", "/docs"])
def test_every_answer_forbids_sniffing_framing_and_referrers(client, reader, path):
    assert_hardened(client.get(path, headers=reader))


def test_api_answers_may_load_nothing_and_not_be_framed(client, reader):
    response = client.get("/v1/provinces", headers=reader)
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_answer_to_a_request_with_an_api_key_is_private_and_revalidated(client, reader):
    response = client.get("/v1/provinces", headers=reader)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, no-cache"


def test_not_modified_answer_stays_private(client, admin, reader):
    client.put("/v1/provinces/62", json={"name": "Kalimantan Tengah"}, headers=admin)
    first = client.get("/v1/provinces/62", headers=reader)
    again = client.get("/v1/provinces/62", headers={**reader, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.headers["Cache-Control"] == "private, no-cache"


def test_write_answer_is_never_stored(client, admin):
    response = client.put("/v1/provinces/62", json={"name": "Kalimantan Tengah"}, headers=admin)
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "private, no-store"
    assert_hardened(response)


def test_refusal_is_never_stored(client):
    response = client.get("/v1/provinces", headers={"Authorization": "Bearer ktpel_nosuchkey_" + "x" * 40})
    assert response.status_code == 401
    assert response.headers["Cache-Control"] == "private, no-store"
    anonymous = client.get("/v1/provinces")
    assert anonymous.status_code == 401
    assert anonymous.headers["Cache-Control"] == "no-store"


def test_public_read_answer_may_be_kept_by_shared_caches_but_is_revalidated(make_app):
    client = make_app(public_read=True).test_client()
    response = client.get("/v1/provinces")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"


def test_database_error_text_never_reaches_the_client(make_app, caplog):
    app = make_app()
    app.test_client_class = FlaskClient  # the route below is a test's own, not in the contract

    @app.get("/test-only/broken-query")
    def broken_query():
        with db.transaction() as conn, conn.cursor() as cur:
            cur.execute("SELECT secret_column FROM no_such_table_xyz WHERE id = %(id)s", {"id": 1})
        return "unreachable"

    response = app.test_client().get("/test-only/broken-query", headers={"X-Request-ID": "trace-broken-query"})

    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert response.json["request_id"] == "trace-broken-query"
    body = response.get_data(as_text=True)
    for leak in ("no_such_table_xyz", "secret_column", "SELECT", "psycopg2", "UndefinedTable", "Traceback",
                 "relation", "broken_query", ".py"):
        assert leak not in body, leak
    assert response.headers["Cache-Control"] == "no-store"
    assert_hardened(response)
    # The operator still gets the whole story, in the log.
    assert "no_such_table_xyz" in caplog.text
