"""What comes in (query parameters) and goes out (field order, CSV columns) for coverage."""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..clock import today
from ..fields import CalendarDate
from .rules import INTERVALS

SORTS = ("code", "name", "coverage_percent", "-coverage_percent")

REGENCY_ROW_FIELDS = (
    "code", "name", "kind", "province_code", "eligible_population", "recorded", "coverage_percent",
    "target_percent", "achievement_percent", "band", "remaining_to_target", "last_reported_on", "stale",
)
REGENCY_ANSWER_FIELDS = REGENCY_ROW_FIELDS + ("pace_per_day", "projected_target_date")
ROLLUP_FIELDS = (
    "eligible_population", "recorded", "coverage_percent", "achievement_percent", "band",
    "remaining_to_target", "regencies_total", "regencies_reporting",
)
PROVINCE_ROW_FIELDS = ("code", "name") + ROLLUP_FIELDS
HISTORY_POINT_FIELDS = (
    "date", "eligible_population", "recorded", "coverage_percent", "target_percent", "achievement_percent", "band",
)


class PastDate(CalendarDate):
    """A calendar date that is not after today (UTC+9): coverage is known up to today."""

    default_error_messages = {"future": "Must not be after today ({today}, UTC+9)."}

    def _deserialize(self, value, attr, data, **kwargs):
        day = super()._deserialize(value, attr, data, **kwargs)
        current = today()
        if day > current:
            raise self.make_error("future", today=current.isoformat())
        return day


class CoverageQuery(Schema):
    as_of = PastDate(load_default=today)


class ProvinceCoverageQuery(CoverageQuery):
    sort = fields.String(load_default="code", validate=validate.OneOf(SORTS))


class _HistoryRange(Schema):
    @validates_schema
    def from_not_after_to(self, data, **kwargs):
        if "from" in data and "to" in data and data["from"] > data["to"]:
            raise ValidationError("Must not be after `to`.", field_name="from")


# Built from a dict because `from` is a Python keyword; load_query knows fields by these names.
HistoryQuery = _HistoryRange.from_dict({
    "from": PastDate(required=True),
    "to": PastDate(load_default=today),
    "interval": fields.String(load_default="month", validate=validate.OneOf(INTERVALS)),
}, name="HistoryQuery")


def pick(row, names):
    return {name: row[name] for name in names}
