"""What comes in and goes out for submissions, batches and the change feed."""
import re

from marshmallow import Schema, fields, validate

from ..fields import CalendarDate, ReportingDate, StrictInteger
from ..regions.schemas import PROVINCE_CODE, REGENCY_CODE

MAX_BATCH_ITEMS = 10_000
MAX_RECORDED = 2_147_483_647  # the column is a PostgreSQL integer
CSV_COLUMNS = ("regency_code", "as_of", "recorded", "reference", "note")
CSV_REQUIRED = ("regency_code", "as_of", "recorded")
_DIGITS = re.compile(r"^\d+$")


class SubmissionIn(Schema):
    regency_code = fields.String(
        required=True, validate=validate.Regexp(REGENCY_CODE, error="Must be a regency code like 62.09.")
    )
    as_of = ReportingDate(required=True)
    recorded = StrictInteger(required=True, validate=validate.Range(min=0, max=MAX_RECORDED))
    reference = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class BatchIn(Schema):
    items = fields.List(fields.Nested(SubmissionIn), required=True)


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
