"""Reading the registry from CSV files: every line checked before anything is stored."""
import csv
import io

from .. import audit
from ..fields import parse_calendar_date
from . import queries
from .schemas import KINDS, PROVINCE_CODE, REGENCY_CODE


class ImportRejected(Exception):
    """The file has bad lines; `problems` names each one. Nothing was stored."""

    def __init__(self, problems):
        super().__init__("\n".join(problems))
        self.problems = problems


def _rows(text, filename, expected_header):
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [name for name in expected_header if name not in header]
    if missing:
        raise ImportRejected([f"{filename}: line 1: the header lacks {', '.join(missing)}"])
    for line_no, row in enumerate(reader, start=2):
        yield line_no, {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}


def parse_regions(provinces_text, regencies_text, *, provinces_name="provinces", regencies_name="regencies"):
    problems, provinces, regencies = [], {}, {}
    for line, row in _rows(provinces_text, provinces_name, ("code", "name")):
        where = f"{provinces_name}: line {line}"
        if not PROVINCE_CODE.match(row["code"]):
            problems.append(f"{where}: code {row['code']!r} is not two digits")
        elif row["code"] in provinces:
            problems.append(f"{where}: province {row['code']} appears twice")
        if not 1 <= len(row["name"]) <= 200:
            problems.append(f"{where}: name must have 1 to 200 characters")
        provinces[row["code"]] = row["name"]
    for line, row in _rows(regencies_text, regencies_name, ("code", "name", "kind", "province_code")):
        where = f"{regencies_name}: line {line}"
        code = row["code"]
        if not REGENCY_CODE.match(code):
            problems.append(f"{where}: code {code!r} is not of the form NN.NN")
        elif code in regencies:
            problems.append(f"{where}: regency {code} appears twice")
        elif code[:2] != row["province_code"]:
            problems.append(f"{where}: code {code} does not start with its province {row['province_code']!r}")
        if row["province_code"] not in provinces:
            problems.append(f"{where}: province {row['province_code']!r} is not in the provinces file")
        if row["kind"] not in KINDS:
            problems.append(f"{where}: kind {row['kind']!r} is not kabupaten or kota")
        if not 1 <= len(row["name"]) <= 200:
            problems.append(f"{where}: name must have 1 to 200 characters")
        regencies[code] = row
    if problems:
        raise ImportRejected(problems)
    return provinces, regencies


def parse_populations(text, *, filename="population"):
    problems, rows, seen = [], [], set()
    for line, row in _rows(text, filename, ("regency_code", "effective_from", "count")):
        where = f"{filename}: line {line}"
        day = parse_calendar_date(row["effective_from"])
        if not REGENCY_CODE.match(row["regency_code"]):
            problems.append(f"{where}: regency_code {row['regency_code']!r} is not of the form NN.NN")
        if day is None:
            problems.append(f"{where}: effective_from {row['effective_from']!r} is not a date YYYY-MM-DD")
        if not (row["count"].isascii() and row["count"].isdigit()) or not 1 <= int(row["count"]) <= 2_000_000_000:
            problems.append(f"{where}: count {row['count']!r} is not a whole number of at least 1")
        if (row["regency_code"], day) in seen:
            problems.append(f"{where}: {row['regency_code']} from {row['effective_from']} appears twice")
        seen.add((row["regency_code"], day))
        source = row.get("source") or None
        if source and len(source) > 500:
            problems.append(f"{where}: source is longer than 500 characters")
        rows.append((line, row["regency_code"], day, row["count"], source))
    if problems:
        raise ImportRejected(problems)
    return [(line, code, day, int(count), source) for line, code, day, count, source in rows]


def _tally(counts, row):
    counts["unchanged" if row is None else ("created" if row["created"] else "updated")] += 1


def import_regions(conn, provinces, regencies):
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for code, name in sorted(provinces.items()):
        _tally(counts, queries.put_province(conn, code=code, name=name))
    for code, row in sorted(regencies.items()):
        _tally(counts, queries.put_regency(conn, code=code, name=row["name"], kind=row["kind"],
                                           province_code=row["province_code"]))
    audit.record(conn, action="regions.import", resource="/v1/regencies", after=counts)
    return counts


def import_populations(conn, rows, *, filename="population"):
    """Store eligible populations; every regency must already exist, or nothing is stored."""
    unknown = [f"{filename}: line {line}: there is no regency {code}"
               for line, code, *_ in rows if not queries.regency_exists(conn, code=code)]
    if unknown:
        raise ImportRejected(unknown)
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for _line, code, day, count, source in rows:
        _tally(counts, queries.put_eligible_population(
            conn, regency_code=code, effective_from=day, count=count, source=source))
    audit.record(conn, action="population.import", resource="/v1/regencies", after=counts)
    return counts
