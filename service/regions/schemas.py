"""What comes in and goes out for provinces, regencies and eligible populations."""
import re

from marshmallow import Schema, fields, validate

from ..fields import StrictInteger

# ASCII digits and \Z: Python's \d takes any script's digits and $ a trailing newline; the database takes neither.
PROVINCE_CODE = re.compile(r"[0-9]{2}\Z")
REGENCY_CODE = re.compile(r"[0-9]{2}\.[0-9]{2}\Z")
KINDS = ("kabupaten", "kota")


class ProvincePut(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200))


class RegencyPut(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    province_code = fields.String(
        required=True, validate=validate.Regexp(PROVINCE_CODE, error="Must be two digits, like 62.")
    )


class EligiblePopulationPut(Schema):
    count = StrictInteger(required=True, validate=validate.Range(min=1, max=2_000_000_000))
    source = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))


class PageQuery(Schema):
    cursor = fields.String()
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class RegencyQuery(PageQuery):
    province = fields.String(validate=validate.Regexp(PROVINCE_CODE, error="Must be two digits, like 62."))
    kind = fields.String(validate=validate.OneOf(KINDS))
    q = fields.String(validate=validate.Length(1, 200))


def province_out(row):
    return {"code": row["code"], "name": row["name"]}


def eligible_population_out(row):
    return {"effective_from": row["effective_from"], "count": row["count"], "source": row["source"]}


def regency_out(row):
    current = None
    if row.get("population_effective_from") is not None:
        current = {
            "effective_from": row["population_effective_from"],
            "count": row["population_count"],
            "source": row["population_source"],
        }
    return {
        "code": row["code"],
        "name": row["name"],
        "kind": row["kind"],
        "province_code": row["province_code"],
        "eligible_population": current,
    }
