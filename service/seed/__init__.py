"""Demo data: Kalimantan Tengah as it stood in June 2016."""
import datetime as dt
import decimal
import json
from pathlib import Path

from .. import audit
from ..regions import queries as regions
from ..submissions import queries as submissions
from ..targets import queries as targets

KALTENG_2016 = Path(__file__).parent / "kalteng_2016.json"


def load_kalteng_2016():
    return json.loads(KALTENG_2016.read_text(), parse_float=decimal.Decimal)


def seed_kalteng_2016(conn):
    """Load the province, its 14 regencies, their eligible populations and the target; idempotent."""
    data = load_kalteng_2016()
    counts = {"created": 0, "updated": 0, "unchanged": 0}

    def tally(row):
        counts["unchanged" if row is None else ("created" if row["created"] else "updated")] += 1

    province = data["province"]
    tally(regions.put_province(conn, code=province["code"], name=province["name"]))
    effective_from = dt.date.fromisoformat(data["eligible_population_effective_from"])
    for regency in data["regencies"]:
        tally(regions.put_regency(conn, code=regency["code"], name=regency["name"], kind=regency["kind"],
                                  province_code=province["code"]))
        tally(regions.put_eligible_population(
            conn, regency_code=regency["code"], effective_from=effective_from,
            count=regency["eligible_population"], source=data["eligible_population_source"],
        ))
    target = data["national_target"]
    tally(targets.put_target(conn, effective_from=dt.date.fromisoformat(target["effective_from"]),
                             target_percent=decimal.Decimal(target["target_percent"]), note=target["note"]))
    as_of = dt.date.fromisoformat(data["as_of"])
    counts_to_load = [
        (r["code"], as_of, r["recorded"]) for r in data["regencies"]
        if submissions.effective_recorded(conn, regency_code=r["code"], as_of=as_of) != r["recorded"]
    ]
    submissions.insert_loaded_counts(conn, rows=counts_to_load)
    counts["created"] += len(counts_to_load)
    counts["unchanged"] += len(data["regencies"]) - len(counts_to_load)
    audit.record(conn, action="seed.kalteng-2016", resource="/v1/provinces/62", after=counts)
    return counts
