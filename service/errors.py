"""ApiError and its kinds; every error leaves the service here, as problem+json (RFC 9457)."""
import logging
from http import HTTPStatus

import psycopg2.errors
from flask import g, json, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_TYPE_PREFIX = "urn:ktpel-coverage:problem:"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class ApiError(Exception):
    """An answer other than success. `slug` names a domain problem; None is plain HTTP."""

    status = HTTPStatus.INTERNAL_SERVER_ERROR
    slug = None
    title = None

    def __init__(self, detail=None, *, errors=None, headers=None, slug=None, title=None, status=None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        if slug:
            self.slug = slug
        if title:
            self.title = title
        if status:
            self.status = HTTPStatus(status)


class BadRequest(ApiError):
    status = HTTPStatus.BAD_REQUEST


class Unauthorized(ApiError):
    status = HTTPStatus.UNAUTHORIZED
    slug = "unauthorized"
    title = "Authentication required"


class Forbidden(ApiError):
    status = HTTPStatus.FORBIDDEN
    slug = "forbidden"
    title = "Not allowed"


class NotFound(ApiError):
    status = HTTPStatus.NOT_FOUND
    slug = "not-found"
    title = "Not found"


class Conflict(ApiError):
    status = HTTPStatus.CONFLICT
    slug = "conflict"
    title = "Conflict"


class PreconditionFailed(ApiError):
    status = HTTPStatus.PRECONDITION_FAILED
    slug = "precondition-failed"
    title = "The resource has changed"


class InvalidInput(ApiError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    slug = "invalid-input"
    title = "The input is not valid"


class DatabaseUnavailable(ApiError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    slug = "database-unavailable"
    title = "The database is unavailable"

    def __init__(self, detail=None, **kwargs):
        super().__init__(detail, headers={"Retry-After": "5"}, **kwargs)


def pointers_from_messages(messages, prefix=""):
    """Flatten marshmallow's nested messages into [{pointer, detail}] with JSON Pointers."""
    found = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key == "_schema":
                found.extend(pointers_from_messages(value, prefix))
            else:
                part = str(key).replace("~", "~0").replace("/", "~1")
                found.extend(pointers_from_messages(value, f"{prefix}/{part}"))
    elif isinstance(messages, (list, tuple)):
        if all(isinstance(m, str) for m in messages):
            found.extend({"pointer": prefix or "/", "detail": m} for m in messages)
        else:
            for m in messages:
                found.extend(pointers_from_messages(m, prefix))
    else:
        found.append({"pointer": prefix or "/", "detail": str(messages)})
    return found


def invalid_input(messages, *, detail="The request has invalid fields; see errors.", prefix=""):
    return InvalidInput(detail, errors=pointers_from_messages(messages, prefix))


def problem_response(app, *, status, title, detail=None, slug=None, errors=None, headers=None):
    body = {
        "type": PROBLEM_TYPE_PREFIX + slug if slug else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": int(status),
        "detail": detail or HTTPStatus(status).description,
    }
    if errors:
        body["errors"] = errors
    request_id = getattr(g, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    response = app.response_class(json.dumps(body), status=int(status), mimetype=PROBLEM_CONTENT_TYPE)
    if status == HTTPStatus.UNAUTHORIZED:
        response.headers["WWW-Authenticate"] = 'Bearer realm="ktpel-coverage"'
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register_error_handlers(app):
    @app.errorhandler(ApiError)
    def on_api_error(exc):
        return problem_response(
            app, status=exc.status, title=exc.title, detail=exc.detail, slug=exc.slug,
            errors=exc.errors, headers=exc.headers,
        )

    @app.errorhandler(ValidationError)
    def on_validation_error(exc):
        return on_api_error(invalid_input(exc.messages))

    @app.errorhandler(HTTPException)
    def on_http_exception(exc):
        headers = {}
        if exc.code == HTTPStatus.METHOD_NOT_ALLOWED and getattr(exc, "valid_methods", None):
            headers["Allow"] = ", ".join(exc.valid_methods)
        return problem_response(app, status=exc.code, title=exc.name, detail=exc.description, headers=headers)

    @app.errorhandler(psycopg2.errors.QueryCanceled)
    def on_statement_timeout(exc):
        log.warning("statement timeout: %s", exc.pgerror)
        return problem_response(
            app, status=HTTPStatus.SERVICE_UNAVAILABLE, title="The query took too long",
            detail="The database did not answer within the statement timeout; try again later.",
            slug="statement-timeout", headers={"Retry-After": "5"},
        )

    @app.errorhandler(Exception)
    def on_unexpected(exc):
        # The client learns nothing about the internals; the log keeps the traceback.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(
            app, status=HTTPStatus.INTERNAL_SERVER_ERROR, title="Internal Server Error",
            detail="The service failed to answer this request; it has been logged.",
        )
