"""DATABASE_READ_URL: GETs are read there, writes (and API key checks) stay on the primary.

The "replica" is the test database itself, reached as a role whose transactions are read-only
by default, as on a streaming standby: a write sent there would fail.
"""
import secrets

import psycopg2
import psycopg2.extensions
import psycopg2.extras
import pytest

READ_ROLE_PREFIX = "ktpel_read_test_"


@pytest.fixture
def read_url(database_url):
    role = READ_ROLE_PREFIX + secrets.token_hex(4)
    password = secrets.token_hex(16)
    admin = psycopg2.connect(database_url)
    admin.autocommit = True
    dbname = admin.get_dsn_parameters()["dbname"]
    with admin.cursor() as cur:
        cur.execute(f"CREATE ROLE {role} LOGIN PASSWORD %s", (password,))
        cur.execute(f"ALTER ROLE {role} SET default_transaction_read_only = on")
        cur.execute(f'GRANT CONNECT ON DATABASE "{dbname}" TO {role}')
        cur.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        cur.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    yield psycopg2.extensions.make_dsn(database_url, user=role, password=password), role
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
        cur.execute(f"DROP OWNED BY {role}")
        cur.execute(f"DROP ROLE {role}")
    admin.close()


def backends_of(conn, role):
    with conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM pg_stat_activity WHERE usename = %s AND application_name = %s",
                    (role, "ktpel-coverage"))
        return cur.fetchone()["n"]


def test_the_read_role_cannot_write(read_url):
    url, _ = read_url
    conn = psycopg2.connect(url)
    try:
        with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction), conn.cursor() as cur:
            cur.execute("INSERT INTO province (code, name) VALUES ('99', 'nowhere')")
    finally:
        conn.close()


def test_gets_are_read_from_database_read_url_and_writes_go_to_the_primary(make_app, read_url, admin, reader, db):
    url, role = read_url
    app = make_app(database_read_url=url)
    client = app.test_client()

    created = client.put("/v1/provinces/62", json={"name": "Kalimantan Tengah"}, headers=admin)
    assert created.status_code == 201
    assert backends_of(db, role) == 0

    listed = client.get("/v1/provinces", headers=reader)
    one = client.get("/v1/provinces/62", headers=reader)
    assert listed.status_code == 200 and [p["code"] for p in listed.json["items"]] == ["62"]
    assert one.status_code == 200 and one.json["name"] == "Kalimantan Tengah"
    assert backends_of(db, role) == 1  # the read pool's connection, kept open

    renamed = client.put("/v1/provinces/62", json={"name": "Kalteng"}, headers=admin)
    assert renamed.status_code == 200
    assert client.get("/v1/provinces/62", headers=reader).json["name"] == "Kalteng"


def test_readiness_checks_the_read_database_too(make_app, read_url):
    url, _ = read_url
    client = make_app(database_read_url=url).test_client()
    assert client.get("/readyz").status_code == 200
    unreachable = psycopg2.extensions.make_dsn(url, dbname="ktpel_no_such_replica")
    broken = make_app(database_read_url=unreachable, connect_timeout_seconds=1)
    assert broken.test_client().get("/readyz").status_code == 503
