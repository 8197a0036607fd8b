"""An authenticated request checks its key and runs its transactions on one pooled connection."""
import psycopg2.errors
import psycopg2.extensions
import pytest

from service import db as service_db


def checkouts(pool):
    """The pool's in-use count after every checkout and return, as the metrics hook sees it."""
    seen = []
    observer = pool.on_usage_change

    def record(in_use):
        seen.append(in_use)
        if observer is not None:
            observer(in_use)

    pool.on_usage_change = record
    return seen


@pytest.mark.parametrize("path", ["/v1/provinces", "/v1/coverage"])
def test_a_read_with_a_key_checks_out_one_connection_and_gives_it_back(app, client, reader, path):
    seen = checkouts(app.extensions["ktpel_pools"]["write"])

    response = client.get(path, headers=reader)

    assert response.status_code == 200
    assert seen == [1, 0]


def test_a_write_refused_after_the_key_check_gives_its_connection_back(app, client, admin, db):
    pool = app.extensions["ktpel_pools"]["write"]
    seen = checkouts(pool)

    response = client.put("/v1/provinces/62", json={"name": ""}, headers=admin)

    assert response.status_code == 422
    assert seen == [1, 0] and pool.in_use == 0
    with db, db.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM province")
        assert cur.fetchone()["n"] == 0


def test_a_key_revoked_between_two_requests_is_refused_on_the_same_connection(app, client, admin, db):
    assert client.get("/v1/provinces", headers=admin).status_code == 200
    with db, db.cursor() as cur:
        cur.execute("UPDATE api_key SET revoked_at = now()")

    assert client.get("/v1/provinces", headers=admin).status_code == 401
    assert app.extensions["ktpel_pools"]["write"].in_use == 0


def test_statements_sent_together_go_in_order_and_the_first_error_stores_nothing(app, db):
    with app.test_request_context():
        with pytest.raises(psycopg2.errors.CheckViolation):
            with service_db.transaction() as conn, service_db.together(conn) as writes:
                with writes.cursor() as cur:
                    cur.execute("INSERT INTO province (code, name) VALUES (%s, %s)", ("62", "Kalimantan Tengah"))
                    cur.execute("INSERT INTO province (code, name) VALUES (%s, %s)", ("6", "a code of one digit"))
                    cur.execute("INSERT INTO province (code, name) VALUES (%s, %s)", ("63", "Kalimantan Selatan"))
        with service_db.transaction() as conn, service_db.together(conn) as writes:
            with writes.cursor() as cur:
                cur.execute("INSERT INTO province (code, name) VALUES (%s, %s)", ("62", "50% done; 'quoted'"))
                cur.execute("UPDATE province SET name = name || '!' WHERE code = %s", ("62",))

    with db, db.cursor() as cur:
        cur.execute("SELECT code, name FROM province")
        assert cur.fetchall() == [{"code": "62", "name": "50% done; 'quoted'!"}]


def test_a_carried_transaction_commits_with_its_writes_and_rolls_back_on_an_error(app, db):
    insert = "INSERT INTO province (code, name) VALUES (%s, %s)"
    with app.test_request_context():
        with pytest.raises(LookupError):
            with service_db.carried_transaction() as conn:
                with conn.cursor() as cur:
                    cur.execute(insert, ("61", "Kalimantan Barat"))
                    raise LookupError("a view gives up after its first statement")
        with pytest.raises(RuntimeError, match="must end with together"):
            with service_db.carried_transaction() as conn, conn.cursor() as cur:
                cur.execute(insert, ("63", "Kalimantan Selatan"))
        with service_db.carried_transaction() as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) AS n FROM province")
                assert cur.fetchone() == {"n": 0}
            with service_db.together(conn, commit=True) as writes, writes.cursor() as cur:
                cur.execute(insert, ("62", "Kalimantan Tengah"))
        with service_db.reading() as conn, conn.cursor() as cur:  # the same connection, in no transaction
            cur.execute("SELECT code FROM province")
            assert cur.fetchall() == [{"code": "62"}]
            assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE


def test_a_connection_given_back_inside_a_transaction_begun_by_sql_is_rolled_back(app, db):
    pool = app.extensions["ktpel_pools"]["write"]
    conn = pool.getconn()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("BEGIN; INSERT INTO province (code, name) VALUES ('62', 'Kalimantan Tengah')")
    conn.autocommit = False  # psycopg2 now believes no transaction is open: rollback() would send nothing

    pool.putconn(conn)

    again = pool.getconn()
    try:
        assert again.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        with again.cursor() as cur:
            cur.execute("SELECT count(*) AS n FROM province")
            assert [dict(row) for row in cur] == [{"n": 0}]  # a cursor iterates as plain dicts
    finally:
        pool.putconn(again)
