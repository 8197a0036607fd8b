"""Liveness and readiness, for load balancers and orchestrators."""
import logging

from flask import Blueprint, current_app

from .. import db, migrate
from ..errors import DatabaseUnavailable
from ..web import json_response

log = logging.getLogger(__name__)
blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    return json_response({"status": "ok"}, etag=False)


@blueprint.get("/readyz")
def readyz():
    try:
        with db.transaction() as conn:
            waiting = migrate.pending(conn)
    except migrate.MigrationError as exc:
        # The operator reads which file in the log (and from `ktpel-coverage migrate`); clients learn no file names.
        log.error("not ready: %s", exc)
        raise DatabaseUnavailable("The database schema does not match this version of the service.",
                                  slug="schema-mismatch", title="The database schema does not match") from exc
    if waiting:
        raise DatabaseUnavailable(
            "The database is reachable but not migrated; run 'ktpel-coverage migrate'.",
            slug="not-migrated", title="The database is not migrated",
        )
    if current_app.extensions["ktpel_pools"]["read"] is not current_app.extensions["ktpel_pools"]["write"]:
        with db.reading() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
    return json_response({"status": "ready"}, etag=False)
