"""The computation rules of coverage (DESIGN section 3), in exact integer arithmetic; no database here.

Counts are ints; the target is a Decimal with two places (numeric(5,2)), taken here as a whole
number of hundredths. Every percentage is one exact integer division of the counts, rounded
half-up once, at the end, to hundredths; bands compare exact integer products. The results are
Hundredths: floats that serialise as their two-decimal value (a JSON number prints the shortest
float that reads back as it, which for a whole number of hundredths is that decimal; CSV and str
print two places).
"""
import datetime as dt
import functools
from fractions import Fraction
from itertools import islice

BANDS = (("met", 100), ("above_90", 90), ("above_60", 60))
BELOW_ALL = "below_60"
INTERVALS = ("day", "week", "month")
MAX_HISTORY_POINTS = 1000


class Hundredths(float):
    """A figure rounded to hundredths: the float nearest to cents / 100, printed with two places."""

    __slots__ = ()

    @classmethod
    def of(cls, cents):
        return cls(cents / 100)  # one correctly rounded division: the float nearest to the decimal

    @property
    def cents(self):
        return round(self * 100)

    def __str__(self):
        return format(self, ".2f")


def _half_up(numerator, denominator):
    """numerator / denominator rounded to the nearest integer, halves away from zero (denominator > 0)."""
    quotient = (2 * abs(numerator) + denominator) // (2 * denominator)
    return -quotient if numerator < 0 else quotient


@functools.lru_cache(maxsize=64)
def _target(target_percent):
    """(the target in hundredths of a percent, as an int; the same as Hundredths) from its Decimal."""
    hundredths = target_percent.scaleb(2)
    if hundredths != hundredths.to_integral_value():
        raise ValueError(f"a target has at most two decimals, not {target_percent}")
    return int(hundredths), Hundredths.of(int(hundredths))


def _coverage(recorded, eligible):
    """100 × recorded / eligible, to hundredths."""
    return Hundredths.of(_half_up(10_000 * recorded, eligible))


def _achievement(recorded, eligible, target):
    """100 × (100 × recorded / eligible) / target, from the unrounded coverage: 10^6·r / (e·T) with T in hundredths."""
    return Hundredths.of(_half_up(10**8 * recorded, eligible * target))


def _band(recorded, eligible, target):
    """The band of the exact achievement: achievement ≥ k ⇔ 10^6·recorded ≥ k·eligible·T."""
    achieved = 10**6 * recorded
    for name, threshold in BANDS:
        if achieved >= threshold * eligible * target:
            return name
    return BELOW_ALL


def _remaining(recorded, eligible, target):
    """max(0, ceil(target / 100 × eligible) − recorded)."""
    needed = -(-target * eligible // 10_000)
    return max(0, needed - recorded)


_NO_FIGURES = {"coverage_percent": None, "achievement_percent": None, "band": None, "remaining_to_target": None}


def figures(*, recorded, eligible_population, target_percent):
    """The computed fields shared by a regency row, a rollup and a history point.

    Coverage needs the counts; achievement, band and remaining need the target too (else None).
    """
    return _figures(recorded, eligible_population, None if target_percent is None else _target(target_percent)[0])


def _figures(recorded, eligible, target):
    """figures() with the target as a whole number of hundredths (or None)."""
    if recorded is None or eligible is None:
        return _NO_FIGURES.copy()
    recorded, eligible = int(recorded), int(eligible)
    if target is None:
        return {**_NO_FIGURES, "coverage_percent": _coverage(recorded, eligible)}
    return {
        "coverage_percent": _coverage(recorded, eligible),
        "achievement_percent": _achievement(recorded, eligible, target),
        "band": _band(recorded, eligible, target),
        "remaining_to_target": _remaining(recorded, eligible, target),
    }


def exact_coverage(*, recorded, eligible_population):
    """The unrounded coverage (as recorded / eligible), for ordering rows; None when it cannot be computed."""
    if recorded is None or eligible_population is None:
        return None
    return Fraction(int(recorded), int(eligible_population))


def is_stale(*, last_reported_on, as_of, stale_after_days):
    return last_reported_on is None or (as_of - last_reported_on).days > stale_after_days


def regency_row(regency, *, as_of, target_percent, stale_after_days):
    """A regency's coverage row from its registry entry and its carried-forward figures as of the date.

    `regency` has code, name, kind, province_code, eligible_population, recorded, last_reported_on.
    """
    recorded = regency["recorded"]
    eligible = regency["eligible_population"]
    target, target_shown = (None, None) if target_percent is None else _target(target_percent)
    computed = _figures(recorded, eligible, target)
    return {
        "code": regency["code"],
        "name": regency["name"],
        "kind": regency["kind"],
        "province_code": regency["province_code"],
        "eligible_population": eligible,
        "recorded": recorded,
        "coverage_percent": computed["coverage_percent"],
        "target_percent": target_shown,
        "achievement_percent": computed["achievement_percent"],
        "band": computed["band"],
        "remaining_to_target": computed["remaining_to_target"],
        "last_reported_on": regency["last_reported_on"],
        "stale": is_stale(last_reported_on=regency["last_reported_on"], as_of=as_of,
                          stale_after_days=stale_after_days),
    }


def rollup_counts(regencies):
    """Counts added over regencies (never percentages).

    The denominator sums the eligible populations the regencies have as of the date; the numerator
    sums the recorded counts of those same regencies, one without a submission counting 0. With no
    eligible population at all, both are None.
    """
    eligible = [r for r in regencies if r["eligible_population"] is not None]
    return {
        "eligible_population": sum(r["eligible_population"] for r in eligible) if eligible else None,
        "recorded": sum(r["recorded"] or 0 for r in eligible) if eligible else None,
        "regencies_total": len(regencies),
        "regencies_reporting": sum(1 for r in regencies if r["last_reported_on"] is not None),
    }


def add_rollups(rollups):
    """Rollups of rollups (the nation over its provinces): their counts added."""
    with_population = [r for r in rollups if r["eligible_population"] is not None]
    return {
        "eligible_population": sum(r["eligible_population"] for r in with_population) if with_population else None,
        "recorded": sum(r["recorded"] for r in with_population) if with_population else None,
        "regencies_total": sum(r["regencies_total"] for r in rollups),
        "regencies_reporting": sum(r["regencies_reporting"] for r in rollups),
    }


def rollup_totals(counts, *, target_percent):
    return {
        "eligible_population": counts["eligible_population"],
        "recorded": counts["recorded"],
        **figures(recorded=counts["recorded"], eligible_population=counts["eligible_population"],
                  target_percent=target_percent),
        "regencies_total": counts["regencies_total"],
        "regencies_reporting": counts["regencies_reporting"],
    }


def pace_per_day(*, now, earlier):
    """Recorded per day between the reports in force as of D and as of D − 90 days, to hundredths.

    `now` and `earlier` are (recorded, last_reported_on) pairs, either of them None when no report.
    """
    if now is None or earlier is None or now[1] == earlier[1]:
        return None
    days = (now[1] - earlier[1]).days
    return Hundredths.of(_half_up(100 * (now[0] - earlier[0]), days))


def projected_target_date(*, last_reported_on, remaining, pace):
    """last_reported_on + ceil(remaining / pace) days; None when met, without a positive pace, or past 9999."""
    if remaining is None or remaining == 0 or pace is None or pace <= 0 or last_reported_on is None:
        return None
    days = -(-100 * remaining // pace.cents)
    if days > (dt.date.max - last_reported_on).days:
        return None
    return last_reported_on + dt.timedelta(days=days)


def _interval_ends(start, interval):
    """Every end of an interval on or after start: each day, each Sunday, each month's last day."""
    if interval == "day":
        day = start
        while True:
            yield day
            day += dt.timedelta(days=1)
    elif interval == "week":
        day = start + dt.timedelta(days=(6 - start.weekday()) % 7)
        while True:
            yield day
            day += dt.timedelta(days=7)
    else:
        year, month = start.year, start.month
        while True:
            following = dt.date(year + month // 12, month % 12 + 1, 1)
            yield following - dt.timedelta(days=1)
            year, month = following.year, following.month


def history_dates(start, end, interval, *, limit=MAX_HISTORY_POINTS):
    """The dates of a history: each interval end in [start, end], and end itself if it is not one.

    Gives at most limit + 1 dates, so that a caller can tell a range that has too many.
    """
    dates = []
    for day in _interval_ends(start, interval):
        if day > end or len(dates) > limit:
            break
        dates.append(day)
    if (not dates or dates[-1] != end) and len(dates) <= limit:
        dates.append(end)
    return list(islice(dates, limit + 1))
