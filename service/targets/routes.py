"""The national target: the share of the eligible population that should be recorded."""
from http import HTTPStatus

from flask import Blueprint

from .. import audit, db
from ..auth import requires
from ..regions import queries as regions
from ..regions.schemas import PageQuery
from ..web import (
    check_if_match,
    cursor_date,
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
from .schemas import NationalTargetPut, target_out

blueprint = Blueprint("targets", __name__)


@blueprint.get("/v1/national-targets")
@requires("reader")
def list_national_targets():
    query = load_query(PageQuery)
    after = decode_cursor(query["cursor"], cursor_date) if "cursor" in query else None
    with db.reading() as conn:
        rows = queries.list_targets(conn, after=after, limit=query["limit"] + 1)
    return page_response([target_out(r) for r in rows], limit=query["limit"],
                         cursor_of=lambda t: t["effective_from"].isoformat())


@blueprint.put("/v1/national-targets/<effective_from>")
@requires("admin")
def put_national_target(effective_from):
    refuse_query_parameters()
    day = path_date(effective_from, "effective_from")
    data = load_body(NationalTargetPut)
    resource = f"/v1/national-targets/{day.isoformat()}"
    with db.transaction() as conn:
        regions.lock_for_write(conn, resource=resource)
        before = queries.get_target(conn, effective_from=day, for_update=True)
        before = target_out(before) if before else None
        check_if_match(before)
        queries.put_target(conn, effective_from=day, **data)
        after = target_out(queries.get_target(conn, effective_from=day))
        if after != before:
            audit.record(conn, action="national_target.put", resource=resource, before=before, after=after)
    if before is None:
        return json_response(after, HTTPStatus.CREATED, headers={"Location": location_of(resource)})
    return json_response(after)
