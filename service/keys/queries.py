"""SQL for API keys."""
from ..db import Prepared


def create_key(conn, *, key_id, name, role, scopes, token_hash):
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO api_key (id, name, role, scopes, token_hash)
            VALUES (%(id)s, %(name)s, %(role)s, %(scopes)s, %(token_hash)s)
            RETURNING id, name, role, scopes, created_at, revoked_at
            """,
            {"id": key_id, "name": name, "role": role, "scopes": list(scopes), "token_hash": token_hash},
        )
        return cur.fetchone()


_ACTIVE_KEY = Prepared("active_key", """
    SELECT id, name, role, scopes, token_hash
      FROM api_key
     WHERE id = %(id)s AND revoked_at IS NULL
""")


# Carried with a request's first statement (db.CarriedCheck): raises KEY_REFUSED unless the key is
# still active and as the process holds it (migration 0007).
KEY_STILL_GOOD = Prepared("key_still_good",
                          "SELECT api_key_still_good(%(id)s, %(token_hash)s, %(role)s, %(scopes)s::text[])")
KEY_REFUSED = "KT401"


def get_active_key(conn, *, key_id):
    with conn.cursor() as cur:
        cur.execute(_ACTIVE_KEY, {"id": key_id})
        return cur.fetchone()


def list_keys(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT id, name, role, scopes, created_at, revoked_at FROM api_key ORDER BY created_at, id")
        return cur.fetchall()


def revoke_key(conn, *, key_id):
    """Revoke a key; None when there is no such key. Revoking twice keeps the first time."""
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE api_key SET revoked_at = coalesce(revoked_at, now())
             WHERE id = %(id)s
            RETURNING id, name, role, scopes, created_at, revoked_at
            """,
            {"id": key_id},
        )
        return cur.fetchone()
