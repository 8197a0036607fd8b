from marshmallow import Schema, fields, validate

from ..fields import ExactDecimal


class NationalTargetPut(Schema):
    target_percent = ExactDecimal(
        places=2, required=True,
        validate=validate.Range(min=0, max=100, min_inclusive=False, error="Must be more than 0 and at most 100."),
    )
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))


def target_out(row):
    return {"effective_from": row["effective_from"], "target_percent": row["target_percent"], "note": row["note"]}
