"""SQL for the national target."""


def list_targets(conn, *, after, limit):
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT effective_from, target_percent, note
              FROM national_target
             WHERE %(after)s::date IS NULL OR effective_from > %(after)s
             ORDER BY effective_from
             LIMIT %(limit)s
            """,
            {"after": after, "limit": limit},
        )
        return cur.fetchall()


def get_target(conn, *, effective_from, for_update=False):
    with conn.cursor() as cur:
        cur.execute(
            "SELECT effective_from, target_percent, note FROM national_target WHERE effective_from = %(day)s"
            + (" FOR UPDATE" if for_update else ""),
            {"day": effective_from},
        )
        return cur.fetchone()


def put_target(conn, *, effective_from, target_percent, note):
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO national_target AS t (effective_from, target_percent, note)
            VALUES (%(day)s, %(target_percent)s, %(note)s)
            ON CONFLICT (effective_from) DO UPDATE
               SET target_percent = excluded.target_percent, note = excluded.note, updated_at = now()
             WHERE (t.target_percent, t.note) IS DISTINCT FROM (excluded.target_percent, excluded.note)
            RETURNING (xmax = 0) AS created
            """,
            {"day": effective_from, "target_percent": target_percent, "note": note},
        )
        return cur.fetchone()
