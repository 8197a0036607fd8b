"""Coverage against the national target: per regency, per province, nationwide, and over time.

Every answer is computed from the stored rows at the time of the request, carries an ETag, and is
also given as CSV to a client that asks for text/csv. A province answer is also kept with the
database snapshot it was computed in, and sent again while its statement finds the same snapshot
(kept.py): the same rows, so the same answer.
"""
import csv
import datetime as dt
import decimal
import hashlib
import io
from http import HTTPStatus

from flask import Blueprint, current_app, request

from .. import db
from ..auth import requires
from ..errors import ApiError, NotFound
from ..regions import queries as regions
from ..web import encoded_with_etag, json_response, load_query
from . import queries, rules
from .kept import KeptAnswer
from .schemas import (
    HISTORY_POINT_FIELDS,
    PROVINCE_ROW_FIELDS,
    REGENCY_ANSWER_FIELDS,
    REGENCY_ROW_FIELDS,
    CoverageQuery,
    HistoryQuery,
    ProvinceCoverageQuery,
    pick,
)

blueprint = Blueprint("coverage", __name__)

CSV_MIMETYPE = "text/csv"
PACE_WINDOW = dt.timedelta(days=90)


def _stale_after_days():
    return current_app.config["SETTINGS"].stale_after_days


# What most clients send (curl, requests, wrk: */* or nothing): JSON, as best_match() would say, without
# parsing the header.
_JSON_ACCEPTS = frozenset(("", "*/*", "application/json"))


def _wants_csv():
    if request.headers.get("Accept", "").strip() in _JSON_ACCEPTS:
        return False
    return request.accept_mimetypes.best_match(["application/json", CSV_MIMETYPE]) == CSV_MIMETYPE


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | decimal.Decimal | rules.Hundredths):  # "80.00", as the JSON's 80.0 is meant
        return str(value)
    return value


def _csv_response(rows, columns):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_value(row[name]) for name in columns])
    body = out.getvalue().encode()
    tag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    if request.if_none_match.contains_weak(tag.strip('"')):
        response = current_app.response_class(status=int(HTTPStatus.NOT_MODIFIED))
    else:
        response = current_app.response_class(body, mimetype=CSV_MIMETYPE)
        response.headers["Content-Type"] = f"{CSV_MIMETYPE}; charset=utf-8; header=present"
    response.headers["ETag"] = tag
    response.headers["Vary"] = "Accept"
    return response


def _answer(payload, *, rows, columns, kept=None):
    """The JSON payload, or its rows as CSV (a header line of the field names) when the client asks for it.

    rows is iterated only for CSV: a generator spares a JSON answer from building them. `kept`, the
    payload's KeptAnswer, keeps its JSON and ETag once written.
    """
    if _wants_csv():
        return _csv_response(rows, columns)
    if kept is None:
        return json_response(payload, headers={"Vary": "Accept"})
    if kept.body_and_etag is None:
        kept.body_and_etag = encoded_with_etag(payload)
    return json_response(None, headers={"Vary": "Accept"}, body_and_etag=kept.body_and_etag)


def _province_or_404(conn, code):
    province = regions.get_province(conn, code=code)
    if province is None:
        raise NotFound(f"There is no province {code}.")
    return province


_SORT_KEYS = {
    "code": lambda row: row["code"],
    "name": lambda row: (row["name"], row["code"]),
}


def _sorted_rows(rows, sort):
    if sort in _SORT_KEYS:
        return sorted(rows, key=_SORT_KEYS[sort])
    descending = sort.startswith("-")

    def exact(row):
        return rules.exact_coverage(recorded=row["recorded"], eligible_population=row["eligible_population"])

    known = [row for row in rows if exact(row) is not None]
    unknown = [row for row in rows if exact(row) is None]
    # Highest (or lowest) first, ties by code; rows without a coverage go last either way.
    known.sort(key=lambda row: row["code"])
    known.sort(key=exact, reverse=descending)
    return known + sorted(unknown, key=lambda row: row["code"])


@blueprint.get("/v1/coverage")
@requires("reader")
def national_coverage():
    as_of = load_query(CoverageQuery)["as_of"]
    with db.reading() as conn:
        target, provinces = queries.nation_as_of(conn, as_of=as_of)
    rows = [
        {"code": p["code"], "name": p["name"], **rules.rollup_totals(p, target_percent=target)} for p in provinces
    ]
    payload = {
        "as_of": as_of,
        "target_percent": target,
        "totals": rules.rollup_totals(rules.add_rollups(provinces), target_percent=target),
        "provinces": rows,
    }
    return _answer(payload, rows=({"as_of": as_of, **row} for row in rows), columns=("as_of",) + PROVINCE_ROW_FIELDS)


@blueprint.get("/v1/provinces/<code>/coverage")
@requires("reader")
def province_coverage(code):
    query = load_query(ProvinceCoverageQuery)
    as_of = query["as_of"]
    question = ("province", code, as_of, query["sort"])
    kept_answers = current_app.extensions["ktpel_kept_answers"]
    kept = kept_answers.get(question)
    with db.reading() as conn:
        snapshot, found = queries.province_as_of(conn, province_code=code, as_of=as_of,
                                                 unless_snapshot=kept.snapshot if kept else None)
    if found is queries.UNCHANGED:
        answer = kept
    elif found is None:
        raise NotFound(f"There is no province {code}.")
    else:
        answer = KeptAnswer(snapshot, _province_payload(found, as_of=as_of, sort=query["sort"]))
        if snapshot is not None:
            kept_answers.keep(question, answer)
    return _answer(answer.payload, rows=({"as_of": as_of, **row} for row in answer.payload["regencies"]),
                   columns=("as_of",) + REGENCY_ROW_FIELDS, kept=answer)


def _province_payload(found, *, as_of, sort):
    province, target, regencies = found
    stale_after_days = _stale_after_days()
    rows = [
        rules.regency_row(r, as_of=as_of, target_percent=target, stale_after_days=stale_after_days)
        for r in regencies
    ]
    return {
        "as_of": as_of,
        "province": {"code": province["code"], "name": province["name"]},
        "target_percent": target,
        "totals": rules.rollup_totals(rules.rollup_counts(regencies), target_percent=target),
        "regencies": _sorted_rows(rows, sort),
    }


@blueprint.get("/v1/regencies/<code>/coverage")
@requires("reader")
def regency_coverage(code):
    as_of = load_query(CoverageQuery)["as_of"]
    pace_from = as_of - PACE_WINDOW if as_of - dt.date.min >= PACE_WINDOW else None
    with db.reading() as conn:
        found = queries.regency_as_of(conn, regency_code=code, as_of=as_of, earlier=pace_from)
    if found is None:
        raise NotFound(f"There is no regency {code}.")
    regency, target, earlier = found
    row = rules.regency_row(regency, as_of=as_of, target_percent=target, stale_after_days=_stale_after_days())
    now = (regency["recorded"], regency["last_reported_on"]) if regency["last_reported_on"] else None
    pace = rules.pace_per_day(now=now, earlier=(earlier["recorded"], earlier["last_reported_on"]) if earlier else None)
    payload = {
        "as_of": as_of,
        **row,
        "pace_per_day": pace,
        "projected_target_date": rules.projected_target_date(
            last_reported_on=row["last_reported_on"], remaining=row["remaining_to_target"], pace=pace,
        ),
    }
    return _answer(payload, rows=[payload], columns=("as_of",) + REGENCY_ANSWER_FIELDS)


def _history_dates(query):
    dates = rules.history_dates(query["from"], query["to"], query["interval"])
    if len(dates) > rules.MAX_HISTORY_POINTS:
        raise ApiError(
            f"That range has more than {rules.MAX_HISTORY_POINTS} {query['interval']} points; "
            "narrow it or take a longer interval.",
            status=HTTPStatus.UNPROCESSABLE_ENTITY, slug="invalid-query", title="The query is not valid",
            errors=[{"pointer": "from", "detail": f"At most {rules.MAX_HISTORY_POINTS} points per history."}],
        )
    return dates


def _history_answer(interval, figures_by_day):
    points = [
        pick({"date": day["day"], **day, **rules.figures(recorded=day["recorded"],
                                                          eligible_population=day["eligible_population"],
                                                          target_percent=day["target_percent"])},
             HISTORY_POINT_FIELDS)
        for day in figures_by_day
    ]
    return _answer({"interval": interval, "points": points}, rows=points, columns=HISTORY_POINT_FIELDS)


@blueprint.get("/v1/regencies/<code>/coverage/history")
@requires("reader")
def regency_coverage_history(code):
    query = load_query(HistoryQuery)
    dates = _history_dates(query)
    with db.reading() as conn:
        if not regions.regency_exists(conn, code=code):
            raise NotFound(f"There is no regency {code}.")
        figures_by_day = queries.regency_history(conn, regency_code=code, days=dates)
    return _history_answer(query["interval"], figures_by_day)


@blueprint.get("/v1/provinces/<code>/coverage/history")
@requires("reader")
def province_coverage_history(code):
    query = load_query(HistoryQuery)
    dates = _history_dates(query)
    with db.reading() as conn:
        _province_or_404(conn, code)
        figures_by_day = queries.province_history(conn, province_code=code, days=dates)
    return _history_answer(query["interval"], figures_by_day)
