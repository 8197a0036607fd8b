"""Provinces, regencies and eligible populations: read by anyone with a key, kept by admins."""
from http import HTTPStatus

from flask import Blueprint

from .. import audit, db
from ..auth import requires
from ..clock import today
from ..errors import InvalidInput, NotFound, invalid_input
from ..web import (
    check_if_match,
    cursor_date,
    cursor_matching,
    decode_cursor,
    json_response,
    load_body,
    load_query,
    location_of,
    page_response,
    path_date,
    refuse_query_parameters,
)
from . import queries
from .schemas import (
    PROVINCE_CODE,
    REGENCY_CODE,
    EligiblePopulationPut,
    PageQuery,
    ProvincePut,
    RegencyPut,
    RegencyQuery,
    eligible_population_out,
    province_out,
    regency_out,
)

blueprint = Blueprint("regions", __name__)


def _written(payload, *, created, path):
    if created:
        return json_response(payload, HTTPStatus.CREATED, headers={"Location": location_of(path)})
    return json_response(payload)


def _known_code(code, pattern, what):
    """404 for a code that cannot exist, before it reaches the database (which refuses, say, a NUL)."""
    if not pattern.match(code):
        raise NotFound(f"There is no {what} {code!r}.")


def _path_code(code, pattern, example):
    if not pattern.match(code):
        raise InvalidInput("The code in the path is not valid.",
                           errors=[{"pointer": "code", "detail": f"Must look like {example}."}])


@blueprint.get("/v1/provinces")
@requires("reader")
def list_provinces():
    query = load_query(PageQuery)
    after = decode_cursor(query["cursor"], cursor_matching(PROVINCE_CODE)) if "cursor" in query else None
    with db.reading() as conn:
        rows = queries.list_provinces(conn, after_code=after, limit=query["limit"] + 1)
    return page_response([province_out(r) for r in rows], limit=query["limit"], cursor_of=lambda p: p["code"])


@blueprint.get("/v1/provinces/<code>")
@requires("reader")
def get_province(code):
    refuse_query_parameters()
    _known_code(code, PROVINCE_CODE, "province")
    with db.reading() as conn:
        row = queries.get_province(conn, code=code)
    if row is None:
        raise NotFound(f"There is no province {code}.")
    return json_response(province_out(row))


@blueprint.put("/v1/provinces/<code>")
@requires("admin")
def put_province(code):
    refuse_query_parameters()
    _path_code(code, PROVINCE_CODE, "62")
    data = load_body(ProvincePut)
    with db.transaction() as conn:
        queries.lock_for_write(conn, resource=f"/v1/provinces/{code}")
        before = queries.get_province(conn, code=code, for_update=True)
        before = province_out(before) if before else None
        check_if_match(before)
        queries.put_province(conn, code=code, name=data["name"])
        after = province_out(queries.get_province(conn, code=code))
        if after != before:
            audit.record(conn, action="province.put", resource=f"/v1/provinces/{code}", before=before, after=after)
    return _written(after, created=before is None, path=f"/v1/provinces/{code}")


@blueprint.get("/v1/regencies")
@requires("reader")
def list_regencies():
    query = load_query(RegencyQuery)
    after = decode_cursor(query["cursor"], cursor_matching(REGENCY_CODE)) if "cursor" in query else None
    with db.reading() as conn:
        rows = queries.list_regencies(
            conn, on=today(), after_code=after, limit=query["limit"] + 1,
            province=query.get("province"), kind=query.get("kind"), name_contains=query.get("q"),
        )
    return page_response([regency_out(r) for r in rows], limit=query["limit"], cursor_of=lambda r: r["code"])


@blueprint.get("/v1/regencies/<code>")
@requires("reader")
def get_regency(code):
    refuse_query_parameters()
    _known_code(code, REGENCY_CODE, "regency")
    with db.reading() as conn:
        row = queries.get_regency(conn, code=code, on=today())
    if row is None:
        raise NotFound(f"There is no regency {code}.")
    return json_response(regency_out(row))


@blueprint.put("/v1/regencies/<code>")
@requires("admin")
def put_regency(code):
    refuse_query_parameters()
    _path_code(code, REGENCY_CODE, "62.09")
    data = load_body(RegencyPut)
    if code[:2] != data["province_code"]:
        raise invalid_input(
            {"province_code": [f"Regency {code} belongs to province {code[:2]}: its code's first part."]}
        )
    with db.transaction() as conn:
        if queries.get_province(conn, code=data["province_code"]) is None:
            raise invalid_input({"province_code": [f"There is no province {data['province_code']}."]})
        queries.lock_for_write(conn, resource=f"/v1/regencies/{code}")
        before = queries.get_regency(conn, code=code, on=today(), for_update=True)
        before = regency_out(before) if before else None
        check_if_match(before)
        queries.put_regency(conn, code=code, **data)
        after = regency_out(queries.get_regency(conn, code=code, on=today()))
        if after != before:
            audit.record(conn, action="regency.put", resource=f"/v1/regencies/{code}", before=before, after=after)
    return _written(after, created=before is None, path=f"/v1/regencies/{code}")


@blueprint.get("/v1/regencies/<code>/eligible-population")
@requires("reader")
def eligible_population_history(code):
    _known_code(code, REGENCY_CODE, "regency")
    query = load_query(PageQuery)
    after = decode_cursor(query["cursor"], cursor_date) if "cursor" in query else None
    with db.reading() as conn:
        if not queries.regency_exists(conn, code=code):
            raise NotFound(f"There is no regency {code}.")
        rows = queries.eligible_population_history(conn, regency_code=code, after=after, limit=query["limit"] + 1)
    return page_response(
        [eligible_population_out(r) for r in rows], limit=query["limit"],
        cursor_of=lambda item: item["effective_from"].isoformat(),
    )


@blueprint.put("/v1/regencies/<code>/eligible-population/<effective_from>")
@requires("admin")
def put_eligible_population(code, effective_from):
    refuse_query_parameters()
    _known_code(code, REGENCY_CODE, "regency")
    day = path_date(effective_from, "effective_from")
    data = load_body(EligiblePopulationPut)
    resource = f"/v1/regencies/{code}/eligible-population/{day.isoformat()}"
    with db.transaction() as conn:
        if not queries.regency_exists(conn, code=code):
            raise NotFound(f"There is no regency {code}.")
        queries.lock_for_write(conn, resource=resource)
        before = queries.get_eligible_population(conn, regency_code=code, effective_from=day, for_update=True)
        before = eligible_population_out(before) if before else None
        check_if_match(before)
        queries.put_eligible_population(conn, regency_code=code, effective_from=day, **data)
        after = eligible_population_out(queries.get_eligible_population(conn, regency_code=code, effective_from=day))
        if after != before:
            audit.record(conn, action="eligible_population.put", resource=resource, before=before, after=after)
    return _written(after, created=before is None, path=resource)
