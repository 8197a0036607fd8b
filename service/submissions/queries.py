"""SQL for submissions."""


def insert_loaded_counts(conn, *, rows):
    """Store counts loaded by an operator (seed, bench) in one statement; rows: (regency_code, as_of, recorded)."""
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO submission (regency_code, as_of, recorded, note)
            SELECT t.regency_code, t.as_of, t.recorded, %(note)s
              FROM unnest(%(codes)s::text[], %(days)s::date[], %(counts)s::int[]) AS t(regency_code, as_of, recorded)
            """,
            {
                "codes": [r[0] for r in rows],
                "days": [r[1] for r in rows],
                "counts": [r[2] for r in rows],
                "note": "loaded from the command line",
            },
        )
        return cur.rowcount


def effective_recorded(conn, *, regency_code, as_of):
    """The recorded count of the effective submission for this regency and date, or None."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT recorded FROM submission
             WHERE regency_code = %(code)s AND as_of = %(as_of)s AND retracted_at IS NULL
             ORDER BY id DESC
             LIMIT 1
            """,
            {"code": regency_code, "as_of": as_of},
        )
        row = cur.fetchone()
    return None if row is None else row["recorded"]
