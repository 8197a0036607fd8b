"""SQL for coverage: the carried-forward figures of regencies as of a date, in a few set-based queries.

Each regency's figures as of D are two index probes: its eligible population (primary key,
read backwards) and its effective submission (the partial index `submission_effective`, whose
first row with as_of <= D is the effective submission with the greatest as_of). The answers for a
date on or after a regency's latest report (a dashboard's today) take that submission from
`regency_latest` instead (migration 0005), and probe only the regencies that reported after D.
"""
from ..db import Array, Prepared

_POPULATION_AS_OF = """
    SELECT count
      FROM eligible_population
     WHERE regency_code = {regency} AND effective_from <= {day}
     ORDER BY effective_from DESC
     LIMIT 1
"""

_SUBMISSION_AS_OF = """
    SELECT recorded, as_of
      FROM submission
     WHERE {gate} regency_code = {regency} AND as_of <= {day} AND retracted_at IS NULL
     ORDER BY as_of DESC, id DESC
     LIMIT 1
"""

_TARGET_AS_OF = """
    SELECT target_percent
      FROM national_target
     WHERE effective_from <= {day}
     ORDER BY effective_from DESC
     LIMIT 1
"""


def _lateral(template, *, gate="", **names):
    return "(" + template.format(gate=gate, **names) + ")"


def _effective(regency, day):
    """Joins giving `regency`'s effective submission as of `day`, and its (recorded, as_of) columns.

    regency_latest holds the regency's latest effective submission: when it is on or before the
    day, it is the answer. Otherwise (a date before the latest report) one probe of
    submission_effective, which its gate (a condition on the outer row alone, run before the
    probe) skips in the first case.
    """
    probe = _lateral(_SUBMISSION_AS_OF, gate=f"l.as_of > {day} AND", regency=regency, day=day)
    joins = f"LEFT JOIN regency_latest l ON l.regency_code = {regency}\n LEFT JOIN LATERAL {probe} s ON true"
    recorded = f"CASE WHEN l.as_of <= {day} THEN l.recorded ELSE s.recorded END"
    as_of = f"CASE WHEN l.as_of <= {day} THEN l.as_of ELSE s.as_of END"
    return joins, recorded, as_of


_EFFECTIVE_JOINS, _EFFECTIVE_RECORDED, _EFFECTIVE_AS_OF = _effective("r.code", "%(as_of)s")


_REGENCY_AS_OF = Prepared(
    "regency_as_of",
    f"""
    SELECT r.code, r.name, r.kind, r.province_code,
           ep.count AS eligible_population,
           {_EFFECTIVE_RECORDED} AS recorded, {_EFFECTIVE_AS_OF} AS last_reported_on,
           {_lateral(_TARGET_AS_OF, day="%(as_of)s")} AS target_percent_,
           earlier.recorded AS earlier_recorded_, earlier.as_of AS earlier_reported_on_
      FROM regency r
      LEFT JOIN LATERAL {_lateral(_POPULATION_AS_OF, regency="r.code", day="%(as_of)s")} ep ON true
      {_EFFECTIVE_JOINS}
      LEFT JOIN LATERAL {_lateral(_SUBMISSION_AS_OF, regency="r.code", day="%(earlier)s")} earlier ON true
     WHERE r.code = %(regency)s
    """
)


def regency_as_of(conn, *, regency_code, as_of, earlier):
    """(the regency, with the columns province_as_of gives each of its regencies, the national target,
    its effective report as of `earlier` as {recorded, last_reported_on} or None) in one statement;
    None when there is no such regency.

    earlier may be None (no report is looked for).
    """
    with conn.cursor() as cur:
        cur.execute(_REGENCY_AS_OF, {"as_of": as_of, "regency": regency_code, "earlier": earlier})
        row = cur.fetchone()
    if row is None:
        return None
    regency = {name: row[name] for name in _REGENCY_COLUMNS}
    reported = None
    if row["earlier_reported_on_"] is not None:
        reported = {"recorded": row["earlier_recorded_"], "last_reported_on": row["earlier_reported_on_"]}
    return regency, row["target_percent_"], reported


# The text a statement keeps its answer with (kept.py): the server's start time and the statement's
# snapshot. Also what the bench's replays send in place of a kept answer's (bench/sql_floor.py).
SNAPSHOT_NOW = "pg_postmaster_start_time()::text || ' ' || pg_current_snapshot()::text"

# The province's rows, unless the statement's snapshot is %(unless_snapshot)s: then the condition,
# which names no row, stops the whole plan before it reads anything (kept.py).
_PROVINCE_ROWS = f"""
    SELECT p.code AS province_code_, p.name AS province_name_,
           {_lateral(_TARGET_AS_OF, day="%(as_of)s")} AS target_percent_,
           r.code, r.name, r.kind, r.province_code,
           ep.count AS eligible_population,
           {_EFFECTIVE_RECORDED} AS recorded, {_EFFECTIVE_AS_OF} AS last_reported_on
      FROM province p
      LEFT JOIN regency r ON r.province_code = p.code
      LEFT JOIN LATERAL {_lateral(_POPULATION_AS_OF, regency="r.code", day="%(as_of)s")} ep ON true
      {_EFFECTIVE_JOINS}
     WHERE p.code = %(province)s AND (v.snapshot_ = %(unless_snapshot)s) IS NOT TRUE
     ORDER BY r.code
"""

_PROVINCE_AS_OF = Prepared(
    "province_as_of",
    f"""
    SELECT v.snapshot_, q.*
      FROM (SELECT CASE WHEN NOT (SELECT pg_is_in_recovery()) THEN {SNAPSHOT_NOW} END AS snapshot_) v
      LEFT JOIN LATERAL ({_PROVINCE_ROWS}) q ON true
    """
)

# What province_as_of gives when the snapshot is the one the caller holds an answer for.
UNCHANGED = object()


def province_as_of(conn, *, province_code, as_of, unless_snapshot=None):
    """(the statement's snapshot as kept.py keeps it, or None on a standby; what it found) in one
    statement. What it found: (province {code, name}, national target, its regencies as regency_as_of
    gives one); None when there is no such province; UNCHANGED, with nothing read, when the snapshot
    is `unless_snapshot` (a kept answer's), whose answer is then the answer.

    Each regency is the statement's row as it came, so it also holds the province's columns
    (province_code_, province_name_, target_percent_): copying the rows into dicts of their own cost
    3% of the answer's instructions in one process.
    """
    with conn.cursor() as cur:
        cur.execute(
            _PROVINCE_AS_OF,
            {"as_of": as_of, "province": province_code, "unless_snapshot": unless_snapshot},
        )
        rows = cur.fetchall()
    first = rows[0]
    snapshot = first["snapshot_"]
    if snapshot is not None and snapshot == unless_snapshot:
        return snapshot, UNCHANGED
    if first["province_code_"] is None:
        return snapshot, None
    province = {"code": first["province_code_"], "name": first["province_name_"]}
    regencies = [row for row in rows if row["code"] is not None]
    return snapshot, (province, first["target_percent_"], regencies)


_REGENCY_COLUMNS = ("code", "name", "kind", "province_code", "eligible_population", "recorded", "last_reported_on")


_NATION_AS_OF = Prepared(
    "nation_as_of",
    f"""
    WITH regency_figures AS (
        SELECT r.province_code, ep.count AS eligible_population,
               {_EFFECTIVE_RECORDED} AS recorded, {_EFFECTIVE_AS_OF} AS as_of
          FROM regency r
          LEFT JOIN LATERAL {_lateral(_POPULATION_AS_OF, regency="r.code", day="%(as_of)s")} ep ON true
          {_EFFECTIVE_JOINS}
    ), provinces AS (
        SELECT p.code, p.name,
               sum(f.eligible_population)::bigint AS eligible_population,
               sum(coalesce(f.recorded, 0)) FILTER (WHERE f.eligible_population IS NOT NULL)::bigint AS recorded,
               count(f.province_code) AS regencies_total,
               count(f.as_of) AS regencies_reporting
          FROM province p
          LEFT JOIN regency_figures f ON f.province_code = p.code
         GROUP BY p.code, p.name
    )
    -- One row with no province when there are none, so the target is still read.
    SELECT t.target_percent AS target_percent_, pr.*
      FROM (SELECT {_lateral(_TARGET_AS_OF, day="%(as_of)s")} AS target_percent) t
      LEFT JOIN provinces pr ON true
     ORDER BY pr.code
    """
)


def nation_as_of(conn, *, as_of):
    """(the national target in force on the date or None, every province with its regencies' counts added up)
    in one statement, a row per province.

    eligible_population sums the regencies that have one; recorded sums the counts of those same
    regencies (none reported counts 0); both are NULL when no regency of the province has a population.
    """
    with conn.cursor() as cur:
        cur.execute(_NATION_AS_OF, {"as_of": as_of})
        rows = cur.fetchall()
    provinces = [{name: row[name] for name in _PROVINCE_COLUMNS} for row in rows if row["code"] is not None]
    return rows[0]["target_percent_"], provinces


_PROVINCE_COLUMNS = ("code", "name", "eligible_population", "recorded", "regencies_total", "regencies_reporting")


def regency_history(conn, *, regency_code, days):
    """The regency's figures as of each of the days: eligible_population, recorded, target_percent."""
    with conn.cursor() as cur:
        cur.execute(
            f"""
            SELECT d.day, ep.count AS eligible_population, s.recorded, t.target_percent
              FROM unnest(%(days)s::date[]) AS d(day)
              LEFT JOIN LATERAL {_lateral(_POPULATION_AS_OF, regency="%(regency)s", day="d.day")} ep ON true
              LEFT JOIN LATERAL {_lateral(_SUBMISSION_AS_OF, regency="%(regency)s", day="d.day")} s ON true
              LEFT JOIN LATERAL {_lateral(_TARGET_AS_OF, day="d.day")} t ON true
             ORDER BY d.day
            """,
            {"regency": regency_code, "days": Array(days)},
        )
        return cur.fetchall()


def province_history(conn, *, province_code, days):
    """The province's counts added up as of each of the days, with the target then in force."""
    with conn.cursor() as cur:
        cur.execute(
            f"""
            WITH regency_figures AS (
                SELECT d.day, ep.count AS eligible_population, s.recorded
                  FROM unnest(%(days)s::date[]) AS d(day)
                 CROSS JOIN regency r
                  LEFT JOIN LATERAL {_lateral(_POPULATION_AS_OF, regency="r.code", day="d.day")} ep ON true
                  LEFT JOIN LATERAL {_lateral(_SUBMISSION_AS_OF, regency="r.code", day="d.day")} s ON true
                 WHERE r.province_code = %(province)s
            ), day_totals AS (
                SELECT day,
                       sum(eligible_population)::bigint AS eligible_population,
                       sum(coalesce(recorded, 0)) FILTER (WHERE eligible_population IS NOT NULL)::bigint AS recorded
                  FROM regency_figures
                 GROUP BY day
            )
            SELECT d.day, dt.eligible_population, dt.recorded, t.target_percent
              FROM unnest(%(days)s::date[]) AS d(day)
              LEFT JOIN day_totals dt ON dt.day = d.day
              LEFT JOIN LATERAL {_lateral(_TARGET_AS_OF, day="d.day")} t ON true
             ORDER BY d.day
            """,
            {"province": province_code, "days": Array(days)},
        )
        return cur.fetchall()
