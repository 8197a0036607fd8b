"""Request body limits, checked from Content-Length before a byte of the body is read."""
from http import HTTPStatus

from flask import current_app, request

from .errors import ApiError

# Endpoints that take MAX_BATCH_BODY_BYTES; every other one MAX_BODY_BYTES.
BATCH_ENDPOINTS = frozenset({"submissions.create_batch"})


def body_limit():
    settings = current_app.config["SETTINGS"]
    return settings.max_batch_body_bytes if request.endpoint in BATCH_ENDPOINTS else settings.max_body_bytes


def init_app(app):
    @app.before_request
    def refuse_large_body():
        limit = body_limit()
        # Also bounds a chunked body (no Content-Length): werkzeug stops reading at the limit.
        request.max_content_length = limit
        if request.content_length is not None and request.content_length > limit:
            raise ApiError(
                f"The body is {request.content_length} bytes; this endpoint takes at most {limit}.",
                status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE, title="Content Too Large",
            )
