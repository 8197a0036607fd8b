"""marshmallow fields that take JSON as it is sent, without coercing one type into another."""
import datetime as dt
import decimal
import re

from marshmallow import ValidationError, fields

from .clock import PROGRAMME_START, today

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")


class StrictInteger(fields.Integer):
    """A JSON integer: not a float (even 5.0), not a string, not a boolean."""

    default_error_messages = {"invalid": "Must be a whole number (a JSON integer)."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class ExactDecimal(fields.Decimal):
    """A JSON number kept as Decimal, with at most `places` decimals (never rounded for you)."""

    default_error_messages = {
        "invalid": "Must be a number.",
        "too_precise": "Give at most {places} decimals.",
        "too_large": "Is far too large.",
    }

    def __init__(self, places=2, **kwargs):
        super().__init__(**kwargs)
        self.max_places = places

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, decimal.Decimal)):
            raise self.make_error("invalid")
        number = decimal.Decimal(value)
        if not number.is_finite():
            raise self.make_error("invalid")
        try:
            exact = number == number.quantize(decimal.Decimal(1).scaleb(-self.max_places), rounding=decimal.ROUND_DOWN)
        except decimal.InvalidOperation:  # more digits than the context holds: 1e400
            raise self.make_error("too_large") from None
        if not exact:
            raise self.make_error("too_precise", places=self.max_places)
        return number


class CalendarDate(fields.Date):
    """A calendar date written YYYY-MM-DD, and nothing else."""

    default_error_messages = {"invalid": "Must be a calendar date written YYYY-MM-DD."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not _ISO_DATE.match(value):
            raise self.make_error("invalid")
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise self.make_error("invalid") from None


class ReportingDate(CalendarDate):
    """A date a count can be as of: from the programme's start up to today (UTC+9)."""

    default_error_messages = {
        "too_early": f"Must not be before {PROGRAMME_START.isoformat()}, the start of the KTP-El programme.",
        "future": "Must not be after today ({today}, UTC+9).",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        day = super()._deserialize(value, attr, data, **kwargs)
        if day < PROGRAMME_START:
            raise self.make_error("too_early")
        current = today()
        if day > current:
            raise self.make_error("future", today=current.isoformat())
        return day


def parse_calendar_date(value):
    """A path segment as a date, or None when it is not one."""
    try:
        return CalendarDate()._deserialize(value, None, None)
    except ValidationError:
        return None
