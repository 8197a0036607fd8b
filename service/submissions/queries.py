"""SQL for submissions, their change feed and Idempotency-Key answers.

Writers follow one order in every transaction: lock the regencies (lock_regencies), read and
write submissions, record the audit event, and append to the feed (append_changes) last.
"""
import bisect
from collections import defaultdict

import psycopg2.sql
from psycopg2.extras import Json

from ..db import Array, Prepared, TupleCursor
from ..web import dumps

# Class id of the advisory locks that serialize writes per regency (any fixed number).
_REGENCY_LOCK_CLASS = 62_2016

_STATUS = """
    CASE WHEN s.retracted_at IS NOT NULL THEN 'retracted'
         WHEN EXISTS (SELECT 1 FROM submission n
                       WHERE n.regency_code = s.regency_code AND n.as_of = s.as_of
                         AND n.id > s.id AND n.retracted_at IS NULL) THEN 'superseded'
         ELSE 'effective' END
"""

_SUBMISSION = f"""
    SELECT s.id, s.regency_code, s.as_of, s.recorded, s.reference, s.note, s.warnings,
           s.submitted_by_key_id, k.name AS submitted_by_name, s.received_at,
           s.retracted_at, s.retraction_reason, {_STATUS} AS status
      FROM submission s
      LEFT JOIN api_key k ON k.id = s.submitted_by_key_id
"""


def lock_regencies(conn, *, codes):
    """Serialize writers per regency until this transaction ends; sorted, so two batches never deadlock.

    Under READ COMMITTED each later statement takes a fresh snapshot, so once the lock is held the
    check "does this repeat the effective submission?" sees every earlier writer's commit.
    """
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT count(pg_advisory_xact_lock(%(class)s, hashtext(code)))
              FROM (SELECT DISTINCT unnest(%(codes)s::text[]) AS code ORDER BY 1) AS c
            """,
            {"class": _REGENCY_LOCK_CLASS, "codes": Array(sorted(set(codes)))},
        )


def existing_regencies(conn, *, codes):
    with conn.cursor() as cur:
        cur.execute("SELECT code FROM regency WHERE code = ANY(%(codes)s::text[])", {"codes": Array(list(set(codes)))})
        return {row["code"] for row in cur.fetchall()}


def standing_of(conn, *, items):
    """For each item (regency_code, as_of), in order: what the database already holds.

    current_*: the effective submission for the same regency and date; previous_*: the effective
    submission at the latest earlier date; latest_as_of: the regency's latest reported date;
    eligible_*: its eligible population as of the date.

    Read per regency, not per item: one statement reads each regency's effective submissions
    over the span of its items' dates (and the one before the span), its latest date and its
    eligible populations; the items are then placed among them here. A batch of 10,000 items
    over 514 regencies reads about 10,000 index entries in 514 range scans instead of making
    30,000 probes. (lock_and_standing probes for one item; a test holds the two to one answer.)
    """
    spans = {}
    for item in items:
        first, last = spans.get(item["regency_code"], (item["as_of"], item["as_of"]))
        spans[item["regency_code"]] = (min(first, item["as_of"]), max(last, item["as_of"]))
    with conn.cursor(cursor_factory=TupleCursor) as cur:  # plain tuples
        cur.execute(_STANDING_BY_REGENCY, {
            "codes": Array(list(spans)), "firsts": Array([span[0] for span in spans.values()]),
            "lasts": Array([span[1] for span in spans.values()]),
        })
        rows = cur.fetchall()
    effective, latest, populations = defaultdict(list), {}, defaultdict(list)
    for code, kind, day, submission_id, number in sorted(rows, key=lambda row: (row[0], row[2])):
        if kind == "effective":
            effective[code].append((day, submission_id, number))
        elif kind == "latest":
            latest[code] = day
        else:
            populations[code].append((day, number))
    days = {code: [day for day, _, _ in held] for code, held in effective.items()}
    population_days = {code: [day for day, _ in held] for code, held in populations.items()}
    standing = []
    for item in items:
        code, day = item["regency_code"], item["as_of"]
        k = bisect.bisect_right(days.get(code, []), day) - 1  # the effective submission as of the day
        eff = effective[code][k] if k >= 0 else None
        current = eff if eff is not None and eff[0] == day else None
        previous = (effective[code][k - 1] if k >= 1 else None) if current else eff
        p = bisect.bisect_right(population_days.get(code, []), day) - 1
        population = populations[code][p] if p >= 0 else None
        standing.append({
            "current_id": current and current[1], "current_recorded": current and current[2],
            "previous_as_of": previous and previous[0], "previous_recorded": previous and previous[2],
            "latest_as_of": latest.get(code),
            "eligible_population": population and population[1], "eligible_from": population and population[0],
        })
    return standing


_STANDING_BY_REGENCY = """
    WITH r AS (
        SELECT * FROM unnest(%(codes)s::text[], %(firsts)s::date[], %(lasts)s::date[]) AS r(code, first_day, last_day)
    )
    SELECT r.code, 'effective', s.as_of, s.id, s.recorded
      FROM r CROSS JOIN LATERAL (
            SELECT DISTINCT ON (as_of) as_of, id, recorded FROM submission
             WHERE regency_code = r.code AND as_of BETWEEN r.first_day AND r.last_day AND retracted_at IS NULL
             ORDER BY as_of DESC, id DESC) s
    UNION ALL
    SELECT r.code, 'effective', s.as_of, s.id, s.recorded
      FROM r CROSS JOIN LATERAL (
            SELECT as_of, id, recorded FROM submission
             WHERE regency_code = r.code AND as_of < r.first_day AND retracted_at IS NULL
             ORDER BY as_of DESC, id DESC LIMIT 1) s
    UNION ALL
    SELECT r.code, 'latest', s.as_of, NULL, NULL
      FROM r CROSS JOIN LATERAL (
            SELECT as_of FROM submission
             WHERE regency_code = r.code AND retracted_at IS NULL
             ORDER BY as_of DESC, id DESC LIMIT 1) s
    UNION ALL
    SELECT e.regency_code, 'population', e.effective_from, NULL, e.count
      FROM eligible_population e
     WHERE e.regency_code = ANY(%(codes)s::text[])
"""


# Two statements in one string: the second takes its snapshot after the first was granted the lock.
_LOCK_AND_STANDING = psycopg2.sql.Composed([
    Prepared("lock_regency", "SELECT pg_advisory_xact_lock(%(class)s, hashtext(%(code)s))"),
    psycopg2.sql.SQL(";\n"),
    Prepared("standing_probes", """
    SELECT EXISTS (SELECT 1 FROM regency WHERE code = %(code)s) AS known,
           nextval(pg_get_serial_sequence('submission', 'id')) AS new_id, now() AS received_at,
           eff.id AS eff_id, eff.as_of AS eff_as_of, eff.recorded AS eff_recorded,
           prev.as_of AS prev_as_of, prev.recorded AS prev_recorded,
           (SELECT as_of FROM submission
             WHERE regency_code = %(code)s AND retracted_at IS NULL
             ORDER BY as_of DESC, id DESC LIMIT 1) AS latest_as_of,
           ep.count AS eligible_population, ep.effective_from AS eligible_from
      FROM (SELECT) AS one
      LEFT JOIN LATERAL (
            SELECT as_of, id, recorded FROM submission
             WHERE regency_code = %(code)s AND as_of <= %(day)s AND retracted_at IS NULL
             ORDER BY as_of DESC, id DESC LIMIT 1) eff ON true
      LEFT JOIN LATERAL (
            SELECT as_of, recorded FROM submission
             WHERE eff.as_of = %(day)s
               AND regency_code = %(code)s AND as_of < %(day)s AND retracted_at IS NULL
             ORDER BY as_of DESC, id DESC LIMIT 1) prev ON true
      LEFT JOIN LATERAL (
            SELECT count, effective_from FROM eligible_population
             WHERE regency_code = %(code)s AND effective_from <= %(day)s
             ORDER BY effective_from DESC LIMIT 1) ep ON true
"""),
])


def lock_and_standing(conn, *, item):
    """lock_regencies and standing_of for one item, in one round trip; None when its regency does not exist.

    Else (standing, new_id, received_at): the id and receipt time for insert_submission (an id
    taken and not used is a gap, nothing more). One query string, two statements: the second
    takes its snapshot after the first was granted the lock. The standing is read by four index
    probes (standing_of reads a batch's per regency; a test holds the two to one answer).
    """
    with conn.cursor() as cur:
        cur.execute(_LOCK_AND_STANDING,
                    {"class": _REGENCY_LOCK_CLASS, "code": item["regency_code"], "day": item["as_of"]})
        row = cur.fetchone()
    if not row["known"]:
        return None
    current = row["eff_as_of"] == item["as_of"]  # the effective submission is for that very date
    standing = {
        "current_id": row["eff_id"] if current else None,
        "current_recorded": row["eff_recorded"] if current else None,
        "previous_as_of": row["prev_as_of"] if current else row["eff_as_of"],
        "previous_recorded": row["prev_recorded"] if current else row["eff_recorded"],
        "latest_as_of": row["latest_as_of"],
        "eligible_population": row["eligible_population"],
        "eligible_from": row["eligible_from"],
    }
    return standing, row["new_id"], row["received_at"]


# The warnings travel as one JSON array (one json.dumps for the batch instead of one per item).
_INSERT = """
    INSERT INTO submission (regency_code, as_of, recorded, reference, note, warnings, submitted_by_key_id)
    SELECT t.regency_code, t.as_of, t.recorded, t.reference, t.note, w.warnings, %(key_id)s
      FROM unnest(%(codes)s::text[], %(days)s::date[], %(counts)s::int[], %(refs)s::text[], %(notes)s::text[])
           WITH ORDINALITY AS t(regency_code, as_of, recorded, reference, note, n)
      JOIN jsonb_array_elements(%(warnings)s::jsonb) WITH ORDINALITY AS w(warnings, n) ON w.n = t.n
     ORDER BY t.n
"""


def insert_submissions(conn, *, items, key_id):
    """Store many submissions in one statement; returns {(regency_code, as_of): id}."""
    if not items:
        return {}
    with conn.cursor(cursor_factory=TupleCursor) as cur:  # plain tuples for 10,000 ids
        cur.execute(
            _INSERT + " RETURNING regency_code, as_of, id",
            {
                "codes": Array([i["regency_code"] for i in items]),
                "days": Array([i["as_of"] for i in items]),
                "counts": Array([i["recorded"] for i in items]),
                "refs": Array([i.get("reference") for i in items]),
                "notes": Array([i.get("note") for i in items]),
                "warnings": dumps([i["warnings"] for i in items]),
                "key_id": key_id,
            },
        )
        return {(code, day): submission_id for code, day, submission_id in cur.fetchall()}


_INSERT_ONE = Prepared("insert_submission", """
    INSERT INTO submission (id, regency_code, as_of, recorded, reference, note, warnings, submitted_by_key_id)
    OVERRIDING SYSTEM VALUE
    VALUES (%(id)s, %(regency_code)s, %(as_of)s, %(recorded)s, %(reference)s, %(note)s, %(warnings)s,
            %(submitted_by_key_id)s)
""")


def insert_submission(conn, *, row):
    """Store one submission under the id lock_and_standing took; its received_at is the transaction's now()."""
    with conn.cursor() as cur:
        cur.execute(_INSERT_ONE, {**row, "warnings": Json(row["warnings"], dumps=dumps)})


_APPEND_CHANGES = Prepared("append_changes", """
    WITH counter AS (
        INSERT INTO submission_feed_counter AS c (singleton, last_position) VALUES (true, %(n)s)
        ON CONFLICT (singleton) DO UPDATE SET last_position = c.last_position + %(n)s
        RETURNING last_position
    )
    INSERT INTO submission_change (position, regency_code, as_of, submission_id, kind)
    SELECT counter.last_position - %(n)s + t.ord, t.regency_code, t.as_of, t.submission_id, %(kind)s
      FROM counter,
           unnest(%(codes)s::text[], %(days)s::date[], %(ids)s::bigint[])
           WITH ORDINALITY AS t(regency_code, as_of, submission_id, ord)
""")


def append_changes(conn, *, kind, changes):
    """Give the changes (regency_code, as_of, submission_id) the next feed positions, in order.

    Take this as the transaction's last statement: the counter row stays locked until commit, so
    the next writer's positions come after this commit (see migration 0003), and keeping it last
    keeps that wait short. The upsert also works when the counter table was emptied.
    """
    if not changes:
        return
    with conn.cursor() as cur:
        cur.execute(
            _APPEND_CHANGES,
            {
                "n": len(changes),
                "kind": kind,
                "codes": Array([c[0] for c in changes]),
                "days": Array([c[1] for c in changes]),
                "ids": Array([c[2] for c in changes]),
            },
        )


def insert_loaded_counts(conn, *, rows):
    """Store counts loaded by an operator (seed, bench) in one statement; rows: (regency_code, as_of, recorded).

    They carry no API key and no warnings, and enter the change feed like any other submission.
    """
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO submission (regency_code, as_of, recorded, note)
            SELECT t.regency_code, t.as_of, t.recorded, %(note)s
              FROM unnest(%(codes)s::text[], %(days)s::date[], %(counts)s::int[]) AS t(regency_code, as_of, recorded)
            RETURNING regency_code, as_of, id
            """,
            {
                "codes": Array([r[0] for r in rows]),
                "days": Array([r[1] for r in rows]),
                "counts": Array([r[2] for r in rows]),
                "note": "loaded from the command line",
            },
        )
        stored = cur.fetchall()
    append_changes(conn, kind="created", changes=[(r["regency_code"], r["as_of"], r["id"]) for r in stored])
    return len(stored)


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


_SUBMISSION_BY_ID = Prepared("submission_by_id", _SUBMISSION + " WHERE s.id = %(id)s")


def get_submission(conn, *, submission_id):
    with conn.cursor() as cur:
        cur.execute(_SUBMISSION_BY_ID, {"id": submission_id})
        return cur.fetchone()


def get_submissions(conn, *, ids):
    with conn.cursor() as cur:
        cur.execute(_SUBMISSION + " WHERE s.id = ANY(%(ids)s::bigint[]) ORDER BY s.id", {"ids": Array(list(ids))})
        return cur.fetchall()


def regency_of_submission(conn, *, submission_id):
    with conn.cursor() as cur:
        cur.execute("SELECT regency_code FROM submission WHERE id = %(id)s", {"id": submission_id})
        row = cur.fetchone()
    return None if row is None else row["regency_code"]


def retract(conn, *, submission_id, reason, key_id):
    """Mark a submission retracted; returns (regency_code, as_of), or None when it already was."""
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE submission
               SET retracted_at = now(), retraction_reason = %(reason)s, retracted_by_key_id = %(key_id)s
             WHERE id = %(id)s AND retracted_at IS NULL
            RETURNING regency_code, as_of
            """,
            {"id": submission_id, "reason": reason, "key_id": key_id},
        )
        return cur.fetchone()


def feed_high_water(conn):
    """The last position handed out by a committed writer: every position up to it is visible now."""
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(last_position), 0) AS high FROM submission_feed_counter")
        return cur.fetchone()["high"]


def changes_after(conn, *, after, up_to, limit, regency=None, province=None, as_of_from=None, as_of_to=None):
    """Feed entries with after < position <= up_to, in position order, with the submission as it is now."""
    with conn.cursor() as cur:
        cur.execute(
            f"""
            SELECT c.position, c.kind AS change, q.*
              FROM (  -- the page's positions first, so the submissions are read for these rows only
                    SELECT position, kind, regency_code, submission_id
                      FROM submission_change
                     WHERE position > %(after)s AND position <= %(up_to)s
                       AND (%(regency)s::text IS NULL OR regency_code = %(regency)s)
                       AND (%(province)s::text IS NULL OR regency_code LIKE %(province)s || '.%%')
                       AND (%(from)s::date IS NULL OR as_of >= %(from)s)
                       AND (%(to)s::date IS NULL OR as_of <= %(to)s)
                     ORDER BY position
                     LIMIT %(limit)s
                   ) c
              CROSS JOIN LATERAL ({_SUBMISSION}
                     WHERE s.regency_code = c.regency_code AND s.id = c.submission_id) q
             ORDER BY c.position
            """,
            {"after": after, "up_to": up_to, "limit": limit, "regency": regency, "province": province,
             "from": as_of_from, "to": as_of_to},
        )
        return cur.fetchall()


def claim_idempotency_key(conn, *, api_key_id, key, request_hash):
    """Claim the key for this request; returns None when claimed, else the row held for it.

    Answers are kept 24 hours; older rows of this API key are deleted here, lazily. A claim left
    without an answer for 5 minutes (a process that died mid-request) may be taken over.
    """
    with conn.cursor() as cur:
        cur.execute(
            """
            DELETE FROM idempotency_key
             WHERE api_key_id = %(api_key_id)s
               AND (created_at < now() - interval '24 hours'
                    OR (key = %(key)s AND status IS NULL AND created_at < now() - interval '5 minutes'))
            """,
            {"api_key_id": api_key_id, "key": key},
        )
        cur.execute(
            """
            INSERT INTO idempotency_key (api_key_id, key, request_hash)
            VALUES (%(api_key_id)s, %(key)s, %(hash)s)
            ON CONFLICT (api_key_id, key) DO NOTHING
            RETURNING key
            """,
            {"api_key_id": api_key_id, "key": key, "hash": request_hash},
        )
        if cur.fetchone() is not None:
            return None
        cur.execute(
            """
            SELECT request_hash, status, body, headers FROM idempotency_key
             WHERE api_key_id = %(api_key_id)s AND key = %(key)s
            """,
            {"api_key_id": api_key_id, "key": key},
        )
        return cur.fetchone() or {"request_hash": request_hash, "status": None, "body": None, "headers": None}


def remember_answer(conn, *, api_key_id, key, status, body, headers):
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE idempotency_key SET status = %(status)s, body = %(body)s, headers = %(headers)s
             WHERE api_key_id = %(api_key_id)s AND key = %(key)s
            """,
            {"api_key_id": api_key_id, "key": key, "status": status, "body": body, "headers": Json(headers)},
        )


def release_idempotency_key(conn, *, api_key_id, key):
    """Forget a claim whose request failed, so that a retry can run."""
    with conn.cursor() as cur:
        cur.execute(
            "DELETE FROM idempotency_key WHERE api_key_id = %(api_key_id)s AND key = %(key)s AND status IS NULL",
            {"api_key_id": api_key_id, "key": key},
        )
