"""SQL of the benchmark's loader: set-based, the fastest path into the submission table.

The counts are made by the database from a hash of (regency, day), so every run loads the same world.
"""
import psycopg2.errors

# A deterministic uniform number in [0, 1) from a text key.
_UNIFORM = "((hashtextextended({key}, 7) & 1048575)::float8 / 1048576.0)"


def _uniform(key):
    return _UNIFORM.format(key=key)


def _skip_foreign_key_checks(cur):
    """For this transaction, when we may: the rows are made from the tables they point to, so the
    per-row foreign key lookups (two million of them) check nothing and would double the load time."""
    cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    if cur.fetchone()["rolsuper"]:
        cur.execute("SET LOCAL session_replication_role = replica")


def regency_codes(conn, *, province_codes=None, limit=None):
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT code FROM regency
             WHERE %(provinces)s::text[] IS NULL OR province_code = ANY(%(provinces)s)
             ORDER BY code
             LIMIT %(limit)s
            """,
            {"provinces": province_codes, "limit": limit},
        )
        return [row["code"] for row in cur.fetchall()]


def load_daily_counts(conn, *, regency_codes, first_day, last_day, mistyped_one_in, retracted_one_in):
    """Ten years of daily cumulative counts per regency, then corrections and retracted rows.

    The true count rises monotonically from 35-65% to 55-100% of the current eligible population,
    by daily steps of random size. One day in `mistyped_one_in` is first reported wrong and then
    corrected by a second row (a later id); one day in `retracted_one_in` gets an extra row with a
    wrong count that is retracted. So the effective count of every regency and day is the true one.
    Returns the number of rows of each kind.
    """
    params = {
        "codes": list(regency_codes), "first": first_day, "last": last_day,
        "mistyped": mistyped_one_in, "retracted": retracted_one_in,
    }
    with conn.cursor() as cur:
        cur.execute("SET LOCAL work_mem = '256MB'")
        _skip_foreign_key_checks(cur)
        cur.execute(
            f"""
            CREATE TEMPORARY TABLE bench_true_count ON COMMIT DROP AS
            WITH regency_curve AS (
                SELECT r.code,
                       ep.count AS eligible,
                       0.35 + 0.30 * {_uniform("r.code || ':start'")} AS start_share,
                       0.20 + 0.45 * {_uniform("r.code || ':gain'")} AS gain_share
                  FROM regency r
                  JOIN LATERAL (
                        SELECT count FROM eligible_population
                         WHERE regency_code = r.code AND effective_from <= %(last)s
                         ORDER BY effective_from DESC LIMIT 1
                  ) ep ON true
                 WHERE r.code = ANY(%(codes)s)
            ), daily_step AS (
                SELECT c.code, c.eligible, c.start_share, c.gain_share, d::date AS as_of,
                       {_uniform("c.code || d::date::text")} AS step
                  FROM regency_curve c
                 CROSS JOIN generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS d
            ), walked AS (
                SELECT code, eligible, start_share, gain_share, as_of,
                       sum(step) OVER (PARTITION BY code ORDER BY as_of) AS walked,
                       sum(step) OVER (PARTITION BY code) AS walk_length
                  FROM daily_step
            )
            SELECT code AS regency_code, as_of,
                   floor(eligible * (start_share + gain_share * walked / walk_length))::int AS recorded,
                   abs(hashtextextended(code || as_of::text, 11)) %% %(mistyped)s = 0 AS mistyped,
                   abs(hashtextextended(code || as_of::text, 13)) %% %(retracted)s = 0 AS has_retracted
              FROM walked
            """,
            params,
        )
        # Rows in the order they would have arrived: day by day, every regency each day.
        cur.execute(
            """
            INSERT INTO submission (regency_code, as_of, recorded, reference, received_at)
            SELECT regency_code, as_of,
                   CASE WHEN mistyped THEN recorded + 1 + recorded / 10 ELSE recorded END,
                   'bench-' || as_of::text,
                   as_of + time '18:00' - interval '7 hours'
              FROM bench_true_count
             ORDER BY as_of, regency_code
            """
        )
        daily = cur.rowcount
        cur.execute(
            """
            INSERT INTO submission (regency_code, as_of, recorded, reference, note, received_at)
            SELECT regency_code, as_of, recorded, 'bench-fix-' || as_of::text, 'corrects a mistyped count',
                   as_of + time '21:00' - interval '7 hours'
              FROM bench_true_count
             WHERE mistyped
             ORDER BY as_of, regency_code
            """
        )
        corrections = cur.rowcount
        cur.execute(
            """
            INSERT INTO submission (regency_code, as_of, recorded, reference, received_at,
                                    retracted_at, retraction_reason)
            SELECT regency_code, as_of, recorded * 2, 'bench-wrong-' || as_of::text,
                   as_of + time '22:00' - interval '7 hours',
                   as_of + time '23:00' - interval '7 hours', 'sent for the wrong regency'
              FROM bench_true_count
             WHERE has_retracted
             ORDER BY as_of, regency_code
            """
        )
        retracted = cur.rowcount
        # The triggers that keep regency_latest (migration 0005) were off with the foreign keys.
        cur.execute("SELECT regency_latest_recompute(%(codes)s::text[])", {"codes": list(regency_codes)})
    return {"daily": daily, "corrections": corrections, "retracted": retracted}


def vacuum_analyze(conn):
    """Statistics for the planner, and the visibility map that lets index-only scans skip the heap
    (autovacuum would get there on a live system; a bench must not wait for it)."""
    with conn.cursor() as cur:
        cur.execute("VACUUM (ANALYZE)")


def checkpoint(conn):
    """CHECKPOINT: what the load left in PostgreSQL's buffers goes to disk now, not during the first
    scenarios. False where the role may not (a superuser may, and from PostgreSQL 15 pg_checkpoint)."""
    try:
        with conn.cursor() as cur:
            cur.execute("CHECKPOINT")
    except psycopg2.errors.InsufficientPrivilege:
        return False
    return True


def loaded_span(conn):
    """What an earlier load left in the database: its first and last day and its row counts."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT min(as_of) AS first_day, max(as_of) AS last_day, count(*) AS submissions,
                   (SELECT count(*) FROM regency) AS regencies, (SELECT count(*) FROM province) AS provinces,
                   pg_size_pretty(pg_total_relation_size('submission')) AS on_disk
              FROM submission
            """
        )
        return cur.fetchone()


def table_sizes(conn):
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT count(*) AS submissions,
                   pg_size_pretty(pg_total_relation_size('submission')) AS on_disk
              FROM submission
            """
        )
        return cur.fetchone()


def current_counts(conn, *, regency_codes, as_of):
    """The true (effective) count of each regency on a day: where POSTed counts must start from."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT DISTINCT ON (regency_code) regency_code, recorded
              FROM submission
             WHERE regency_code = ANY(%(codes)s) AND as_of <= %(as_of)s AND retracted_at IS NULL
             ORDER BY regency_code, as_of DESC, id DESC
            """,
            {"codes": list(regency_codes), "as_of": as_of},
        )
        return {row["regency_code"]: row["recorded"] for row in cur.fetchall()}


def fill_change_feed(conn):
    """Give every loaded row its place in the change feed (migration 0003), as if sent one by one.

    Creations and retractions in the order they happened, as the migration does for rows stored
    before it; then the counter the writers take their next position from. None without the feed.
    """
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('submission_change') IS NOT NULL AS present")
        if not cur.fetchone()["present"]:
            return None
        _skip_foreign_key_checks(cur)
        cur.execute(
            """
            INSERT INTO submission_change (position, regency_code, as_of, submission_id, kind)
            SELECT row_number() OVER (ORDER BY e.at, e.id, e.kind), e.regency_code, e.as_of, e.id, e.kind
              FROM (
                    SELECT id, regency_code, as_of, received_at AS at, 'created' AS kind FROM submission
                    UNION ALL
                    SELECT id, regency_code, as_of, retracted_at, 'retracted' FROM submission
                     WHERE retracted_at IS NOT NULL
                   ) AS e
            """
        )
        changes = cur.rowcount
        cur.execute(
            """
            INSERT INTO submission_feed_counter (last_position)
            SELECT coalesce(max(position), 0) FROM submission_change
            ON CONFLICT (singleton) DO UPDATE SET last_position = excluded.last_position
            """
        )
        return changes


def latest_before(conn, *, day):
    """The latest date before a day (None when none): the batch scenario's earlier runs, in a database
    measured again."""
    with conn.cursor() as cur:
        cur.execute("SELECT max(as_of) AS latest FROM submission WHERE as_of < %(day)s", {"day": day})
        return cur.fetchone()["latest"]
