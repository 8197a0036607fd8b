from flask import Blueprint
from marshmallow import Schema, fields, validate

from .. import db
from ..auth import requires
from ..web import decode_cursor, load_query, page_response
from . import queries

blueprint = Blueprint("audit", __name__)


class AuditQuery(Schema):
    resource = fields.String(validate=validate.Length(max=300))
    action = fields.String(validate=validate.Length(max=100))
    cursor = fields.String()
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


@blueprint.get("/v1/audit-events")
@requires("admin")
def list_audit_events():
    query = load_query(AuditQuery)
    after_id = decode_cursor(query["cursor"], int) if "cursor" in query else 0
    with db.reading() as conn:
        rows = queries.list_events(
            conn, after_id=after_id, limit=query["limit"] + 1,
            resource=query.get("resource"), action=query.get("action"),
        )
    items = [{**row, "id": str(row["id"])} for row in rows]
    return page_response(items, limit=query["limit"], cursor_of=lambda item: int(item["id"]))
