"""Building a world for coverage tests: the registry through its query functions, submissions as rows.

Submissions go in with SQL while the submissions API is being built elsewhere; ids ascend in the
order given, so a later row for the same regency and date is a correction of an earlier one.
"""
from service.regions import queries as regions
from service.targets import queries as targets


def put_province(db, code, name=None):
    with db:
        regions.put_province(db, code=code, name=name or f"Province {code}")


def put_regency(db, code, *, name=None, kind="kabupaten", population=None):
    """A regency (its province must exist); population: {effective_from: count}."""
    with db:
        regions.put_regency(db, code=code, name=name or f"Regency {code}", kind=kind, province_code=code[:2])
        for effective_from, count in (population or {}).items():
            regions.put_eligible_population(db, regency_code=code, effective_from=effective_from, count=count,
                                            source=None)


def put_target(db, effective_from, target_percent):
    with db:
        targets.put_target(db, effective_from=effective_from, target_percent=target_percent, note=None)


def submit(db, regency_code, as_of, recorded, *, retraction_reason=None):
    """Store one submission row (retracted when a reason is given); returns its id."""
    with db, db.cursor() as cur:
        cur.execute(
            """
            INSERT INTO submission (regency_code, as_of, recorded, retracted_at, retraction_reason)
            VALUES (%(code)s, %(as_of)s, %(recorded)s,
                    CASE WHEN %(reason)s::text IS NULL THEN NULL ELSE now() END, %(reason)s)
            RETURNING id
            """,
            {"code": regency_code, "as_of": as_of, "recorded": recorded, "reason": retraction_reason},
        )
        return cur.fetchone()["id"]


def retract(db, submission_id, reason="withdrawn by the regency"):
    with db, db.cursor() as cur:
        cur.execute(
            "UPDATE submission SET retracted_at = now(), retraction_reason = %(reason)s WHERE id = %(id)s",
            {"id": submission_id, "reason": reason},
        )
