"""SQL for provinces, regencies and their eligible populations."""

_REGENCY_WITH_POPULATION = """
    SELECT r.code, r.name, r.kind, r.province_code,
           ep.effective_from AS population_effective_from,
           ep.count AS population_count,
           ep.source AS population_source
      FROM regency r
      LEFT JOIN LATERAL (
            SELECT effective_from, count, source
              FROM eligible_population
             WHERE regency_code = r.code AND effective_from <= %(on)s
             ORDER BY effective_from DESC
             LIMIT 1
      ) ep ON true
"""


def lock_for_write(conn, *, resource):
    """Serialise writers of one resource until commit, also while it does not exist yet (no row to lock)."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%(resource)s, 0))", {"resource": resource})


def list_provinces(conn, *, after_code, limit):
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT code, name FROM province
             WHERE %(after)s::text IS NULL OR code > %(after)s
             ORDER BY code
             LIMIT %(limit)s
            """,
            {"after": after_code, "limit": limit},
        )
        return cur.fetchall()


def get_province(conn, *, code, for_update=False):
    with conn.cursor() as cur:
        cur.execute(
            "SELECT code, name FROM province WHERE code = %(code)s" + (" FOR UPDATE" if for_update else ""),
            {"code": code},
        )
        return cur.fetchone()


def put_province(conn, *, code, name):
    """Create or rename; returns the row and whether it was created."""
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO province AS p (code, name) VALUES (%(code)s, %(name)s)
            ON CONFLICT (code) DO UPDATE
               SET name = excluded.name, updated_at = now()
             WHERE p.name IS DISTINCT FROM excluded.name
            RETURNING code, name, (xmax = 0) AS created
            """,
            {"code": code, "name": name},
        )
        return cur.fetchone()


def list_regencies(conn, *, on, after_code, limit, province=None, kind=None, name_contains=None):
    pattern = None
    if name_contains:
        escaped = name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
    with conn.cursor() as cur:
        cur.execute(
            _REGENCY_WITH_POPULATION
            + """
             WHERE (%(after)s::text IS NULL OR r.code > %(after)s)
               AND (%(province)s::text IS NULL OR r.province_code = %(province)s)
               AND (%(kind)s::text IS NULL OR r.kind = %(kind)s)
               AND (%(pattern)s::text IS NULL OR r.name ILIKE %(pattern)s)
             ORDER BY r.code
             LIMIT %(limit)s
            """,
            {"on": on, "after": after_code, "province": province, "kind": kind, "pattern": pattern, "limit": limit},
        )
        return cur.fetchall()


def get_regency(conn, *, code, on, for_update=False):
    with conn.cursor() as cur:
        cur.execute(
            _REGENCY_WITH_POPULATION + " WHERE r.code = %(code)s" + (" FOR UPDATE OF r" if for_update else ""),
            {"code": code, "on": on},
        )
        return cur.fetchone()


def regency_exists(conn, *, code):
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM regency WHERE code = %(code)s", {"code": code})
        return cur.fetchone() is not None


def put_regency(conn, *, code, name, kind, province_code):
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO regency AS r (code, name, kind, province_code)
            VALUES (%(code)s, %(name)s, %(kind)s, %(province_code)s)
            ON CONFLICT (code) DO UPDATE
               SET name = excluded.name, kind = excluded.kind, updated_at = now()
             WHERE (r.name, r.kind) IS DISTINCT FROM (excluded.name, excluded.kind)
            RETURNING (xmax = 0) AS created
            """,
            {"code": code, "name": name, "kind": kind, "province_code": province_code},
        )
        return cur.fetchone()


def eligible_population_history(conn, *, regency_code, after, limit):
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT effective_from, count, source
              FROM eligible_population
             WHERE regency_code = %(code)s
               AND (%(after)s::date IS NULL OR effective_from > %(after)s)
             ORDER BY effective_from
             LIMIT %(limit)s
            """,
            {"code": regency_code, "after": after, "limit": limit},
        )
        return cur.fetchall()


def get_eligible_population(conn, *, regency_code, effective_from, for_update=False):
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT effective_from, count, source
              FROM eligible_population
             WHERE regency_code = %(code)s AND effective_from = %(effective_from)s
            """
            + (" FOR UPDATE" if for_update else ""),
            {"code": regency_code, "effective_from": effective_from},
        )
        return cur.fetchone()


def put_eligible_population(conn, *, regency_code, effective_from, count, source):
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO eligible_population AS ep (regency_code, effective_from, count, source)
            VALUES (%(code)s, %(effective_from)s, %(count)s, %(source)s)
            ON CONFLICT (regency_code, effective_from) DO UPDATE
               SET count = excluded.count, source = excluded.source, updated_at = now()
             WHERE (ep.count, ep.source) IS DISTINCT FROM (excluded.count, excluded.source)
            RETURNING (xmax = 0) AS created
            """,
            {"code": regency_code, "effective_from": effective_from, "count": count, "source": source},
        )
        return cur.fetchone()
