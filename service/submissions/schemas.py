"""What comes in and goes out for submissions, batches and the change feed."""
import datetime as dt
import re

from marshmallow import Schema, fields, validate

from ..clock import PROGRAMME_START, today
from ..fields import CalendarDate, ReportingDate, StrictInteger
from ..regions.schemas import PROVINCE_CODE, REGENCY_CODE

MAX_BATCH_ITEMS = 10_000
MAX_RECORDED = 2_147_483_647  # the column is a PostgreSQL integer
CSV_COLUMNS = ("regency_code", "as_of", "recorded", "reference", "note")
CSV_REQUIRED = ("regency_code", "as_of", "recorded")
_DIGITS = re.compile(r"^\d+$")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")  # as fields.ReportingDate: ASCII digits, no newline


class SubmissionIn(Schema):
    regency_code = fields.String(
        required=True, validate=validate.Regexp(REGENCY_CODE, error="Must be a regency code like 62.09.")
    )
    as_of = ReportingDate(required=True)
    recorded = StrictInteger(required=True, validate=validate.Range(min=0, max=MAX_RECORDED))
    reference = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))


_ITEM_FIELDS = frozenset(SubmissionIn._declared_fields)
_ITEM_REQUIRED = frozenset(("regency_code", "as_of", "recorded"))


def plainly_valid_item(raw, *, current_day=None):
    """What SubmissionIn().load(raw) gives, when raw is plainly valid; else None, and the schema says why.

    A batch of 10,000 through marshmallow takes over a second; this takes a few milliseconds. It
    accepts only what the schema accepts (tests/test_submissions_batch.py checks the two agree).
    """
    if type(raw) is not dict or not raw.keys() <= _ITEM_FIELDS or not _ITEM_REQUIRED <= raw.keys():
        return None
    code, as_of, recorded = raw["regency_code"], raw["as_of"], raw["recorded"]
    reference, note = raw.get("reference"), raw.get("note")
    if type(code) is not str or not REGENCY_CODE.match(code):
        return None
    if type(recorded) is not int or not 0 <= recorded <= MAX_RECORDED:
        return None
    if type(as_of) is not str or not _ISO_DATE.match(as_of):
        return None
    try:
        day = dt.date.fromisoformat(as_of)
    except ValueError:
        return None
    if not PROGRAMME_START <= day <= (current_day or today()):
        return None
    if reference is not None and (type(reference) is not str or len(reference) > 100):
        return None
    if note is not None and (type(note) is not str or len(note) > 1000):
        return None
    return {"regency_code": code, "as_of": day, "recorded": recorded, "reference": reference, "note": note}


class RetractionIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(1, 500))


class BatchQuery(Schema):
    dry_run = fields.Boolean(load_default=False)


class FeedQuery(Schema):
    regency = fields.String(validate=validate.Regexp(REGENCY_CODE, error="Must be a regency code like 62.09."))
    province = fields.String(validate=validate.Regexp(PROVINCE_CODE, error="Must be two digits, like 62."))
    as_of_from = CalendarDate()
    as_of_to = CalendarDate()
    cursor = fields.String()
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


def csv_item(row):
    """One CSV row as the JSON item it stands for: empty optional cells are absent, digits are a count."""
    item = {}
    for column, value in row.items():
        if value is None or (value == "" and column not in CSV_REQUIRED):
            continue
        if column == "recorded" and _DIGITS.match(value):
            value = int(value)
        item[column] = value
    return item


def submission_out(row):
    key_id = row["submitted_by_key_id"]
    return {
        "id": str(row["id"]),
        "regency_code": row["regency_code"],
        "as_of": row["as_of"],
        "recorded": row["recorded"],
        "reference": row["reference"],
        "note": row["note"],
        "status": row["status"],
        "warnings": row["warnings"],
        "submitted_by": None if key_id is None else {"id": key_id, "name": row["submitted_by_name"]},
        "received_at": row["received_at"],
        "retracted_at": row["retracted_at"],
        "retraction_reason": row["retraction_reason"],
    }


def change_out(row):
    return {**submission_out(row), "change": row["change"]}
