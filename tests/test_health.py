"""Liveness and readiness: /readyz is 200 only when the database answers and has every migration."""
import pytest

from service import create_app, migrate
from service.config import Settings

from .scratch import connect, fetch, scratch_database


@pytest.fixture
def app_on():
    """Build an app on a database of our choosing; its pools are closed afterwards."""
    apps = []

    def build(url):
        app = create_app(Settings(database_url=url, connect_timeout_seconds=1, pool_timeout_seconds=1))
        from .contract import ContractClient

        app.test_client_class = ContractClient
        apps.append(app)
        return app.test_client()

    yield build
    for app in apps:
        for pool in app.extensions["ktpel_pools"].values():
            pool.closeall()


def test_healthz_is_200(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_is_200_on_a_migrated_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready"}


def test_readyz_is_503_on_an_unmigrated_database_then_200_once_migrated(server_url, app_on):
    with scratch_database(server_url) as url:
        client = app_on(url)
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json["type"] == "urn:ktpel-coverage:problem:not-migrated"
        assert response.headers["Retry-After"]
        assert client.get("/healthz").status_code == 200
        conn = connect(url)
        try:
            migrate.migrate(conn, log=lambda line: None)
        finally:
            conn.close()
        assert client.get("/readyz").status_code == 200
        client.application.extensions["ktpel_pools"]["write"].closeall()


def test_readyz_is_503_when_an_applied_migration_was_edited_and_names_no_file(server_url, app_on):
    with scratch_database(server_url) as url:
        conn = connect(url)
        try:
            migrate.migrate(conn, log=lambda line: None)
        finally:
            conn.close()
        fetch(url, "UPDATE schema_migration SET checksum = 'edited' WHERE version = 1")
        client = app_on(url)
        response = client.get("/readyz")
        assert response.status_code == 503
        assert ".sql" not in response.get_data(as_text=True)
        client.application.extensions["ktpel_pools"]["write"].closeall()


def test_readyz_is_503_when_the_database_cannot_be_reached(app_on):
    client = app_on("postgresql://ktpel@127.0.0.1:9/nowhere")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    text = response.get_data(as_text=True)
    assert "127.0.0.1" not in text and "nowhere" not in text and "psycopg2" not in text
    assert client.get("/healthz").status_code == 200
