"""Recording counts: which items are new, which repeat the effective submission, and their warnings.

One path for a single submission and a batch of 10,000: a fixed number of set-based statements,
never one per item.
"""
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import pairwise

from . import queries


@dataclass
class Outcome:
    index: int
    item: dict
    status: str  # created or unchanged
    id: int | None = None
    warnings: list = field(default_factory=list)
    row: dict | None = None  # the submission as get_submission reads it (record_one only)


def record(conn, items, *, key_id, dry_run=False):
    """Store the items that do not repeat their effective submission; returns one Outcome per item.

    The caller has validated the items (known regencies in scope, no two for one regency and date).
    """
    queries.lock_regencies(conn, codes=[i["regency_code"] for i in items])
    standing = queries.standing_of(conn, items=items)
    earlier_in_batch = _earlier_in_batch(items)
    outcomes = []
    for index, (item, held) in enumerate(zip(items, standing, strict=True)):
        if held["current_recorded"] == item["recorded"]:
            outcomes.append(Outcome(index, item, "unchanged", id=held["current_id"]))
        else:
            warnings = warnings_for(item, held, earlier_in_batch.get(index))
            outcomes.append(Outcome(index, item, "created", warnings=warnings))
    new = [o for o in outcomes if o.status == "created"]
    if new and not dry_run:
        stored = queries.insert_submissions(
            conn, items=[{**o.item, "warnings": o.warnings} for o in new], key_id=key_id,
        )
        for o in new:
            o.id = stored[(o.item["regency_code"], o.item["as_of"])]
    unchanged_ids = [o.id for o in outcomes if o.status == "unchanged"]
    if unchanged_ids:
        held_warnings = {r["id"]: r["warnings"] for r in queries.get_submissions(conn, ids=unchanged_ids)}
        for o in outcomes:
            if o.status == "unchanged":
                o.warnings = held_warnings[o.id]
    return outcomes


def record_one(conn, item, *, key, writes):
    """record() for one item, in one round trip when it is new: None when its regency does not exist.

    Its regency's lock, its standing and the new submission's id come in one round trip
    (queries.lock_and_standing); the new submission is written through `writes` (db.together),
    with the rest of the transaction's writes. outcome.row is the submission as get_submission
    reads it.
    """
    found = queries.lock_and_standing(conn, item=item)
    if found is None:
        return None
    held, new_id, received_at = found
    if held["current_recorded"] == item["recorded"]:
        row = queries.get_submission(conn, submission_id=held["current_id"])
        return Outcome(0, item, "unchanged", id=row["id"], warnings=row["warnings"], row=row)
    row = {
        "id": new_id, "regency_code": item["regency_code"], "as_of": item["as_of"], "recorded": item["recorded"],
        "reference": item.get("reference"), "note": item.get("note"), "warnings": warnings_for(item, held),
        "submitted_by_key_id": key.id, "submitted_by_name": key.name, "received_at": received_at,
        "retracted_at": None, "retraction_reason": None,
        # No other row for this regency and date is newer: the writer holds the regency's lock.
        "status": "effective",
    }
    queries.insert_submission(writes, row=row)
    return Outcome(0, item, "created", id=new_id, warnings=row["warnings"], row=row)


def _earlier_in_batch(items):
    """For each item, the same batch's item for its regency at the latest earlier date, if any."""
    by_regency = defaultdict(list)
    for index, item in enumerate(items):
        by_regency[item["regency_code"]].append(index)
    earlier = {}
    for indexes in by_regency.values():
        indexes.sort(key=lambda i: items[i]["as_of"])
        for before, after in pairwise(indexes):
            earlier[after] = items[before]
    return earlier


def warnings_for(item, held, earlier_item=None):
    """The flags of an accepted count, each with a sentence a person at the regency office can act on."""
    warnings = []
    previous_as_of, previous_recorded = held["previous_as_of"], held["previous_recorded"]
    # An earlier item of the same batch becomes effective too, and is at least as recent as the
    # stored one when it shares its date.
    if earlier_item is not None and (previous_as_of is None or earlier_item["as_of"] >= previous_as_of):
        previous_as_of, previous_recorded = earlier_item["as_of"], earlier_item["recorded"]
    if previous_recorded is not None and item["recorded"] < previous_recorded:
        warnings.append({
            "code": "decrease",
            "detail": f"{item['recorded']} is lower than {previous_recorded}, the count for "
                      f"{previous_as_of.isoformat()}; counts are cumulative and should not fall.",
        })
    if held["eligible_population"] is None:
        warnings.append({
            "code": "no_eligible_population",
            "detail": f"Regency {item['regency_code']} has no eligible population as of "
                      f"{item['as_of'].isoformat()}, so its coverage cannot be computed.",
        })
    elif item["recorded"] > held["eligible_population"]:
        warnings.append({
            "code": "exceeds_eligible_population",
            "detail": f"{item['recorded']} is more than the eligible population of {held['eligible_population']} "
                      f"(from {held['eligible_from'].isoformat()}).",
        })
    if held["latest_as_of"] is not None and item["as_of"] < held["latest_as_of"]:
        warnings.append({
            "code": "backfill",
            "detail": f"{item['as_of'].isoformat()} is before {held['latest_as_of'].isoformat()}, the latest "
                      "date this regency has reported; it changes coverage only for the dates in between.",
        })
    return warnings
