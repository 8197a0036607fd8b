"""SQL for the audit trail."""
from psycopg2.extras import Json

from ..db import Prepared
from ..web import dumps

_INSERT_EVENT = Prepared("insert_audit_event", """
    INSERT INTO audit_event (action, resource, before, after, actor_key_id, actor_name, request_id)
    VALUES (%(action)s, %(resource)s, %(before)s, %(after)s, %(actor_key_id)s, %(actor_name)s, %(request_id)s)
""")


def record_event(conn, *, action, resource, before, after, actor_key_id, actor_name, request_id):
    with conn.cursor() as cur:
        cur.execute(
            _INSERT_EVENT,
            {
                "action": action,
                "resource": resource,
                "before": None if before is None else Json(before, dumps=dumps),
                "after": None if after is None else Json(after, dumps=dumps),
                "actor_key_id": actor_key_id,
                "actor_name": actor_name,
                "request_id": request_id,
            },
        )


def list_events(conn, *, after_id, limit, resource=None, action=None):
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT id, occurred_at, actor_key_id, actor_name, action, resource, before, after, request_id
              FROM audit_event
             WHERE id > %(after_id)s
               AND (%(resource)s::text IS NULL OR resource = %(resource)s)
               AND (%(action)s::text IS NULL OR action = %(action)s)
             ORDER BY id
             LIMIT %(limit)s
            """,
            {"after_id": after_id, "limit": limit, "resource": resource, "action": action},
        )
        return cur.fetchall()
