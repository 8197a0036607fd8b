"""Every field of every coverage answer, on random worlds, against a plain model of DESIGN section 3.

The model below is written from the design text alone, with Decimal at a precision far beyond the
inputs; it shares no code with service/coverage.
"""
import datetime as dt
import decimal
import math
from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .coverage_world import put_province, put_regency, put_target, submit

START = dt.date(2016, 1, 1)
STALE_AFTER_DAYS = 20
PROVINCES = ("61", "62", "63")
MODEL = decimal.Context(prec=100)


@dataclass(frozen=True)
class Submission:
    regency: str
    as_of: dt.date
    recorded: int
    retracted: bool


@dataclass
class World:
    regencies: dict          # code -> {effective_from: eligible population}
    targets: dict            # effective_from -> target percent
    submissions: list        # in the order received (ids ascending)
    dates: list              # dates to ask about
    history: tuple           # (from, to, interval)


def day(offset):
    return START + dt.timedelta(days=offset)


# Mostly whole tens of days, so that reports fall exactly STALE_AFTER_DAYS or 90 days before a date asked.
days = st.one_of(st.integers(0, 20).map(lambda n: day(10 * n)), st.integers(0, 200).map(day))
asked = st.one_of(st.integers(0, 32).map(lambda n: day(10 * n)), st.integers(0, 320).map(day))
target_percents = st.one_of(
    st.sampled_from([Decimal("95"), Decimal("100"), Decimal("50"), Decimal("33.33"), Decimal("66.67")]),
    st.integers(1, 10_000).map(lambda n: Decimal(n).scaleb(-2)),
)


@st.composite
def worlds(draw):
    regencies = {}
    for province in PROVINCES[:2]:
        for number in range(1, draw(st.integers(0, 3)) + 1):
            code = f"{province}.{number:02d}"
            regencies[code] = draw(st.dictionaries(days, st.integers(1, 200), max_size=3))
    targets = draw(st.dictionaries(days, target_percents, max_size=3))
    submissions = []
    if regencies:
        submissions = draw(st.lists(
            st.builds(Submission, st.sampled_from(sorted(regencies)), days, st.integers(0, 250), st.booleans()),
            max_size=16,
        ))
        # Corrections: the same regency and date reported again with another count.
        for earlier in draw(st.lists(st.sampled_from(submissions), max_size=3)) if submissions else []:
            submissions.append(Submission(earlier.regency, earlier.as_of, draw(st.integers(0, 250)),
                                          draw(st.booleans())))
    # Dates right on the edges: a report exactly STALE_AFTER_DAYS or 90 days (the pace window) before.
    anchors = sorted({s.as_of for s in submissions}) or [START]
    edges = st.builds(lambda anchor, offset: anchor + dt.timedelta(days=offset), st.sampled_from(anchors),
                      st.sampled_from([0, STALE_AFTER_DAYS, STALE_AFTER_DAYS + 1, 90, 91]))
    dates = sorted({draw(edges), draw(edges), draw(asked)})
    start, end = sorted(draw(st.lists(asked, min_size=2, max_size=2)))
    return World(regencies, targets, submissions, dates, (start, end, draw(st.sampled_from(["day", "week", "month"]))))


# ---- the model: DESIGN section 3, read literally ----

def in_force(entries, on):
    known = [effective_from for effective_from in entries if effective_from <= on]
    return entries[max(known)] if known else None


def effective_report(world, regency, on):
    """The effective submission with the greatest as_of <= on: (recorded, as_of), or None."""
    latest = None
    for submission in world.submissions:  # later ones for the same date win
        if submission.regency == regency and not submission.retracted and submission.as_of <= on:
            if latest is None or submission.as_of >= latest[1]:
                latest = (submission.recorded, submission.as_of)
    return latest


def half_up(value):
    return value.quantize(Decimal("0.01"), rounding=decimal.ROUND_HALF_UP)


def computed(recorded, eligible, target):
    coverage = achievement = band = remaining = None
    if recorded is not None and eligible is not None:
        coverage = MODEL.divide(Decimal(100 * recorded), Decimal(eligible))
        if target is not None:
            achievement = MODEL.divide(MODEL.multiply(coverage, Decimal(100)), target)
            band = ("met" if achievement >= 100 else "above_90" if achievement >= 90
                    else "above_60" if achievement >= 60 else "below_60")
            remaining = max(0, math.ceil(MODEL.multiply(MODEL.divide(target, Decimal(100)), Decimal(eligible)))
                            - recorded)
    return {
        "coverage_percent": None if coverage is None else half_up(coverage),
        "achievement_percent": None if achievement is None else half_up(achievement),
        "band": band,
        "remaining_to_target": remaining,
    }


def model_regency_row(world, code, on):
    eligible = in_force(world.regencies[code], on)
    target = in_force(world.targets, on)
    report = effective_report(world, code, on)
    recorded, last = report if report else (None, None)
    return {
        "code": code, "name": f"Regency {code}", "kind": "kabupaten", "province_code": code[:2],
        "eligible_population": eligible, "recorded": recorded, "target_percent": target,
        **computed(recorded, eligible, target),
        "last_reported_on": None if last is None else last.isoformat(),
        "stale": last is None or (on - last).days > STALE_AFTER_DAYS,
    }


def model_regency_answer(world, code, on):
    row = model_regency_row(world, code, on)
    now = effective_report(world, code, on)
    then = effective_report(world, code, on - dt.timedelta(days=90))
    pace = projected = None
    if now and then and now[1] != then[1]:
        pace = half_up(MODEL.divide(Decimal(now[0] - then[0]), Decimal((now[1] - then[1]).days)))
    if pace is not None and pace > 0 and row["remaining_to_target"]:
        projected = (now[1] + dt.timedelta(days=math.ceil(MODEL.divide(row["remaining_to_target"], pace)))).isoformat()
    return {"as_of": on.isoformat(), **row, "pace_per_day": pace, "projected_target_date": projected}


def model_totals(world, codes, on):
    with_population = [c for c in codes if in_force(world.regencies[c], on) is not None]
    eligible = sum(in_force(world.regencies[c], on) for c in with_population) if with_population else None
    recorded = None
    if with_population:
        recorded = sum((effective_report(world, c, on) or (0, None))[0] for c in with_population)
    return {
        "eligible_population": eligible, "recorded": recorded,
        **computed(recorded, eligible, in_force(world.targets, on)),
        "regencies_total": len(codes),
        "regencies_reporting": sum(1 for c in codes if effective_report(world, c, on)),
    }


def of_province(world, province):
    return sorted(code for code in world.regencies if code[:2] == province)


def model_province_answer(world, province, on):
    return {
        "as_of": on.isoformat(),
        "province": {"code": province, "name": f"Province {province}"},
        "target_percent": in_force(world.targets, on),
        "totals": model_totals(world, of_province(world, province), on),
        "regencies": [model_regency_row(world, code, on) for code in of_province(world, province)],
    }


def model_nation_answer(world, on):
    return {
        "as_of": on.isoformat(),
        "target_percent": in_force(world.targets, on),
        "totals": model_totals(world, sorted(world.regencies), on),
        "provinces": [
            {"code": p, "name": f"Province {p}", **model_totals(world, of_province(world, p), on)} for p in PROVINCES
        ],
    }


def history_dates(start, end, interval):
    ends = []
    current = start
    while current <= end:
        is_end = (interval == "day" or (interval == "week" and current.isoweekday() == 7)
                  or (interval == "month" and (current + dt.timedelta(days=1)).day == 1))
        if is_end or current == end:
            ends.append(current)
        current += dt.timedelta(days=1)
    return ends


def model_point(on, figures):
    return {"date": on.isoformat(), "eligible_population": figures["eligible_population"],
            "recorded": figures["recorded"], "coverage_percent": figures["coverage_percent"],
            "target_percent": figures["target_percent"], "achievement_percent": figures["achievement_percent"],
            "band": figures["band"]}


# ---- the world in the database, and the answers of the real API ----

def store(db, world):
    with db, db.cursor() as cur:
        for table in ("submission", "eligible_population", "regency", "province", "national_target"):
            cur.execute(f"DELETE FROM {table}")  # faster than TRUNCATE for a handful of rows
    for province in PROVINCES:
        put_province(db, province)
    for code, population in world.regencies.items():
        put_regency(db, code, population=population)
    for effective_from, target in world.targets.items():
        put_target(db, effective_from, target)
    for s in world.submissions:
        submit(db, s.regency, s.as_of, s.recorded, retraction_reason="withdrawn" if s.retracted else None)


def get(client, reader, path):
    response = client.get(path, headers=reader)
    assert response.status_code == 200, (path, response.get_json())
    return response.get_json()


@pytest.fixture
def client(make_app):
    return make_app(stale_after_days=STALE_AFTER_DAYS).test_client()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(world=worlds())
def test_every_coverage_answer_follows_the_rules(db, client, reader, world):
    store(db, world)

    for on in world.dates:
        assert get(client, reader, f"/v1/coverage?as_of={on}") == model_nation_answer(world, on)
        for province in PROVINCES:
            assert get(client, reader, f"/v1/provinces/{province}/coverage?as_of={on}") == \
                model_province_answer(world, province, on)
        for code in world.regencies:
            assert get(client, reader, f"/v1/regencies/{code}/coverage?as_of={on}") == \
                model_regency_answer(world, code, on)

    start, end, interval = world.history
    dates = history_dates(start, end, interval)
    query = f"coverage/history?from={start}&to={end}&interval={interval}"
    province = min(world.regencies, default="61.01")[:2]
    expected = [model_point(on, {**model_totals(world, of_province(world, province), on),
                                 "target_percent": in_force(world.targets, on)}) for on in dates]
    assert get(client, reader, f"/v1/provinces/{province}/{query}") == {"interval": interval, "points": expected}
    for code in sorted(world.regencies)[:1]:
        expected = [model_point(on, model_regency_row(world, code, on)) for on in dates]
        assert get(client, reader, f"/v1/regencies/{code}/{query}") == {"interval": interval, "points": expected}
