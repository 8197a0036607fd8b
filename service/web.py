"""The HTTP side of every endpoint: JSON in and out, query parameters, ETags, pages."""
import base64
import binascii
import datetime as dt
import decimal
import functools
import hashlib
import json as stdlib_json
import re
from http import HTTPStatus
from urllib.parse import urlencode

import orjson
from flask import Response, request
from flask.json.provider import JSONProvider
from marshmallow import Schema, ValidationError, missing
from werkzeug.sansio.utils import get_current_url
from werkzeug.urls import iri_to_uri

from .errors import ApiError, BadRequest, InvalidInput, PreconditionFailed, invalid_input
from .fields import parse_calendar_date

JSON_MIMETYPE = "application/json"


def _default(value):
    if isinstance(value, decimal.Decimal):
        # Figures are rounded to two places in Decimal before they get here, and a float's
        # shortest repr prints those digits back exactly, so the JSON number is exact.
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent >= 0 else float(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _orjson_default(value):
    if isinstance(value, float):  # rules.Hundredths: orjson takes only exact floats
        return float(value)
    return _default(value)


# Dates and datetimes go to _default too, so they print exactly as they always have.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME


def dumps(obj, **kwargs):
    """Compact JSON, UTF-8 unescaped, with the service's dates and numbers (_default), as text."""
    return encoded(obj).decode() if not kwargs else _standard_library(obj, **kwargs)


def encoded(obj):
    """dumps(obj) as the UTF-8 bytes of a body, as orjson writes them.

    orjson: the province answer's body took 0.30 ms of its 2.5 CPU ms with the standard library's
    encoder. What orjson refuses (an int beyond 64 bits, a key that is not a string) is written by
    the standard library, the same JSON.
    """
    try:
        return orjson.dumps(obj, default=_orjson_default, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return _standard_library(obj).encode()


def _standard_library(obj, **kwargs):
    kwargs.setdefault("ensure_ascii", False)
    kwargs.setdefault("separators", (",", ":"))
    return stdlib_json.dumps(obj, default=_default, **kwargs)


class ServiceJSONProvider(JSONProvider):
    """Decimals stay exact on the way in (parse_float) and out; dates are ISO 8601."""

    def dumps(self, obj, **kwargs):
        return dumps(obj, **kwargs)

    def loads(self, s, **kwargs):
        return stdlib_json.loads(s, parse_float=decimal.Decimal, parse_constant=_reject_constant, **kwargs)


def _reject_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def json_body(*, allow_empty=False):
    """The request body as parsed JSON: 415 for another content type, 400 when malformed."""
    if request.mimetype != JSON_MIMETYPE:
        if allow_empty and not request.content_length and not request.mimetype:
            return {}
        raise ApiError(
            "Send the body as application/json.",
            status=HTTPStatus.UNSUPPORTED_MEDIA_TYPE, title="Unsupported Media Type",
        )
    raw = request.get_data(cache=True)
    try:
        body = request.json_module.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}", title="Malformed JSON") from exc
    except RecursionError as exc:
        raise BadRequest("The body nests arrays or objects too deeply.", title="Malformed JSON") from exc
    if _may_hold_unstorable(raw):
        refuse_unstorable(body)
    return body


NUL_DETAIL = "Must not contain the NUL character (\\u0000)."
SURROGATE_DETAIL = "Must not contain an unpaired surrogate (\\ud800 to \\udfff without its other half)."
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def _may_hold_unstorable(raw):
    """Whether a JSON body's bytes may parse to a string PostgreSQL cannot store.

    A JSON parser refuses raw control characters in strings and bytes that are not UTF-8, so a NUL
    or an unpaired surrogate can only come from an escape (\\u0000, \\ud800): without one in the
    bytes, the walk over every string (0.1 s for 10,000 items) is skipped.
    """
    return b"\\u0000" in raw or _SURROGATE_ESCAPE.search(raw) is not None


def _unstorable(text):
    """Why PostgreSQL text cannot store this string (it holds a NUL, or is not UTF-8), or None."""
    if "\x00" in text:
        return NUL_DETAIL
    if text.isascii():  # a flag CPython keeps on every string: no encoding needed to know
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_DETAIL
    return None


def _unstorable_strings(body):
    """(JSON Pointer, why) for every string in a parsed body that PostgreSQL text cannot store."""
    found, todo = [], [(body, "")]
    while todo:  # iterative: a body may nest as deep as the JSON parser allowed
        value, pointer = todo.pop()
        if isinstance(value, str):
            why = _unstorable(value)
            if why:
                found.append((pointer or "/", why))
        elif isinstance(value, dict):
            for key, item in value.items():
                part = pointer + "/" + str(key).replace("~", "~0").replace("/", "~1")
                why = _unstorable(str(key))
                if why:
                    found.append((part, why))
                else:
                    todo.append((item, part))
        elif isinstance(value, list):
            todo.extend((item, f"{pointer}/{index}") for index, item in enumerate(value))
    return sorted(found)


def refuse_unstorable(body):
    """422 naming every string of the body that PostgreSQL cannot store: one holding a NUL
    character or an unpaired surrogate (both only reach a parsed body as escapes)."""
    found = _unstorable_strings(body)
    if found:
        raise InvalidInput("The request has invalid fields; see errors.",
                           errors=[{"pointer": pointer, "detail": why} for pointer, why in found])


@functools.cache
def _schema_of(schema_class):
    """One instance per schema class, made on first use: a marshmallow Schema is built field by
    field (0.1-0.3 ms) and keeps no state of its own between loads, so requests share it."""
    return schema_class()


def _schema(schema):
    return _schema_of(schema) if isinstance(schema, type) else schema


def load_body(schema, *, body=None):
    """Validate the JSON body with a marshmallow schema (a class, or an instance): 422 with one
    pointer per problem."""
    schema = _schema(schema)
    if body is None:
        body = json_body()
    else:
        refuse_unstorable(body)
    if not isinstance(body, dict):
        raise invalid_input({"_schema": ["The body must be a JSON object."]})
    try:
        return schema.load(body)
    except ValidationError as exc:
        raise invalid_input(exc.messages) from exc


def load_plain_body(schema, plainly_valid):
    """load_body(schema) for a busy endpoint: what plainly_valid(parsed body) returns, else load_body's answer.

    plainly_valid must return what the schema's load would for a body it accepts, and None for
    any other; such a body is parsed by orjson and never walked by marshmallow (a single
    submission's body cost 0.1 ms of its worker CPU in json.loads and SubmissionIn.load). Every
    other body, and one orjson cannot parse or that may hold a string PostgreSQL cannot store, goes
    through load_body, so its errors are word for word the same.
    """
    if request.mimetype == JSON_MIMETYPE:
        raw = request.get_data(cache=True)
        if not _may_hold_unstorable(raw):
            try:
                value = plainly_valid(orjson.loads(raw))
            except orjson.JSONDecodeError:
                value = None
            if value is not None:
                return value
    return load_body(schema)


def load_query(schema):
    """Validate query parameters against a schema (a class, or an instance): unknown ones are 400,
    bad values 422 named by parameter."""
    schema = _schema(schema)
    args = request.args
    if not args:  # most requests: what the schema loads from nothing, without marshmallow when it can
        defaults = _defaults_alone(schema)
        if defaults is not None:
            return {key: default() if callable(default) else default for key, default in defaults}
    known = set(schema.fields)
    unknown = [name for name in args if name not in known]
    if unknown:
        raise BadRequest(
            "Unknown query parameters: " + ", ".join(sorted(unknown)) + ".",
            title="Unknown query parameter", slug="unknown-query-parameter",
            errors=[{"pointer": name, "detail": "Unknown query parameter."} for name in sorted(unknown)],
        )
    repeated = sorted(name for name in args if len(args.getlist(name)) > 1)
    if repeated:
        raise _invalid_query([{"pointer": name, "detail": "Give this parameter once."} for name in repeated])
    nul = sorted(name for name, value in args.items() if "\x00" in value)
    if nul:
        raise _invalid_query([{"pointer": name, "detail": NUL_DETAIL} for name in nul])
    try:
        return schema.load(args.to_dict())
    except ValidationError as exc:
        raise _invalid_query([
            {"pointer": name, "detail": detail}
            for name, details in sorted(exc.messages.items())
            for detail in (details if isinstance(details, list) else [str(details)])
        ]) from exc


@functools.cache
def _defaults_alone(schema):
    """((key, load_default), ...) when what schema.load({}) gives is its fields' defaults alone; None when
    loading nothing runs more (a required field, a hook such as a schema validator): then it is loaded.

    marshmallow fills a missing field with its load_default (called when callable) unvalidated; a
    query without parameters took 0.09 ms of a coverage answer through it (bench/RESULTS.md).
    """
    hooks = getattr(schema, "_hooks", None)
    if hooks is None or any(hooks.values()) or any(field.required for field in schema.load_fields.values()):
        return None
    return tuple((field.attribute or name, field.load_default) for name, field in schema.load_fields.items()
                 if field.load_default is not missing)


class NoQuery(Schema):
    """The query of an endpoint that takes no parameters: any one is unknown."""


def refuse_query_parameters():
    """400 for any query parameter, on endpoints that take none."""
    load_query(NoQuery)


def _invalid_query(errors):
    """422 for bad query values; each pointer is the parameter's name (a query has no JSON Pointer)."""
    return ApiError("A query parameter is not valid; see errors.", errors=errors,
                    status=HTTPStatus.UNPROCESSABLE_ENTITY, slug="invalid-query", title="The query is not valid")


def etag_of(payload):
    """The ETag of a payload: a hash of the very body json_response sends for it.

    The same payload always serialises to the same bytes (same keys in the same order, the
    same number and date rules), so hashing the body gives the same guarantee as hashing a
    canonical (sort_keys) form, without serialising every answer a second time.
    """
    return _etag_of_body(encoded(payload))


def encoded_with_etag(payload):
    """(the payload's JSON body, its ETag), as json_response makes them."""
    body = encoded(payload)
    return body, _etag_of_body(body)


def _etag_of_body(body):
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _matches(header_value, etag):
    if header_value is None:
        return False
    candidates = [v.strip() for v in header_value.split(",")]
    return "*" in candidates or etag in candidates or f"W/{etag}" in candidates


def json_response(payload, status=HTTPStatus.OK, *, headers=None, etag=True, body_and_etag=None):
    """A JSON answer; with an ETag, a GET that sends a matching If-None-Match gets 304.

    body_and_etag: instead of the payload (None then), its JSON body and ETag written before
    (encoded_with_etag), sent as they are.
    """
    from flask import current_app

    body, tag = body_and_etag or (encoded(payload), None)
    response = current_app.response_class(body, status=int(status), mimetype=JSON_MIMETYPE)
    if etag:
        tag = tag or _etag_of_body(body)
        response.headers["ETag"] = tag
        if request.method in ("GET", "HEAD") and _matches(request.headers.get("If-None-Match"), tag):
            response = current_app.response_class(status=int(HTTPStatus.NOT_MODIFIED))
            response.headers["ETag"] = tag
    for name, value in (headers or {}).items():
        response.headers[name] = value
        if name == "Location" and _PLAIN_URL.match(value):
            response.plain_location = value
    return response


def check_if_match(current_payload):
    """Honour If-Match on a write: 412 when the client's copy is not the current one.

    current_payload is what a GET of the resource answers now: its tag is computed from the
    same serialisation as json_response's, so the ETag a client read matches it.
    """
    header = request.headers.get("If-Match")
    if header is None:
        return
    if current_payload is None:
        raise PreconditionFailed("The resource does not exist yet, so no ETag can match.")
    if not _matches(header, etag_of(current_payload)):
        raise PreconditionFailed("The resource has changed since you read it; read it again and retry.")


def encode_cursor(values):
    raw = stdlib_json.dumps(values, default=_default, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor, shape=lambda values: values):
    """The values packed in a cursor, passed through `shape`; 422 naming `cursor` when it is not ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return shape(stdlib_json.loads(base64.urlsafe_b64decode(padded.encode())))
    except (ValueError, TypeError, KeyError, IndexError, binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError("The cursor is not one this service handed out.", status=HTTPStatus.UNPROCESSABLE_ENTITY,
                       slug="invalid-query", title="The query is not valid",
                       errors=[{"pointer": "cursor", "detail": "Unknown cursor."}]) from exc


def page_response(items, *, limit, cursor_of, extra=None):
    """A keyset page: rows holds up to limit + 1 rows; the extra one only tells there are more."""
    has_more = len(items) > limit
    items = items[:limit]
    next_cursor = encode_cursor(cursor_of(items[-1])) if has_more else None
    payload = {"items": items, "next_cursor": next_cursor}
    if extra:
        payload.update(extra)
    headers = {}
    if next_cursor:
        args = request.args.to_dict()
        args["cursor"] = next_cursor
        headers["Link"] = f'<{request.base_url}?{urlencode(args)}>; rel="next"'
    return json_response(payload, headers=headers)


def location_of(path):
    """The absolute URL of a path on this service, as the client addressed it (for Location)."""
    return _origin(request.scheme, request.host) + path


@functools.lru_cache(maxsize=256)
def _origin(scheme, host):
    # request.host_url as a URI (an IDN host in Punycode), without werkzeug's IRI round trips on
    # every created answer; the few hosts a deployment is reached by are worked out once.
    return iri_to_uri(get_current_url(scheme, host)).rstrip("/")


# A URL werkzeug's iri_to_uri gives back unchanged (a test holds it to that): http(s), a host of
# lower-case ASCII letters, digits, dots and dashes, a port with no leading zero, a path of
# unreserved characters and slashes. What location_of makes of the service's paths.
_PLAIN_URL = re.compile(r"https?://[a-z0-9.-]+(?::[1-9][0-9]{0,4})?(?:/[A-Za-z0-9._~/-]*)?\Z")


class ServiceResponse(Response):
    """Flask's response, but a Location that json_response found to be plainly a URL already is sent
    as it is: werkzeug passes every Location through iri_to_uri when it sends the headers (a split,
    three quotings and an IDNA encoding: 5% of a POST's instructions in one process)."""

    plain_location = None

    def get_wsgi_headers(self, environ):
        location = self.plain_location
        if location is None or self.headers.getlist("Location") != [location]:
            return super().get_wsgi_headers(environ)
        del self.headers["Location"]
        try:
            headers = super().get_wsgi_headers(environ)
        finally:
            self.headers["Location"] = location
        headers["Location"] = location
        return headers


def path_date(value, name):
    """A date taken from the path; 422 naming the parameter when it is not YYYY-MM-DD."""
    day = parse_calendar_date(value)
    if day is None:
        raise InvalidInput("The date in the path is not valid.",
                           errors=[{"pointer": name, "detail": "Must be a calendar date written YYYY-MM-DD."}])
    return day


def cursor_matching(pattern):
    """Shape for decode_cursor: a code the cursor carried, which must match `pattern`."""

    def shape(value):
        if not isinstance(value, str) or not pattern.match(value):
            raise ValueError("not a code")
        return value

    return shape


def cursor_date(value):
    """Shape for decode_cursor: a date the cursor carried."""
    day = parse_calendar_date(value)
    if day is None:
        raise ValueError("not a date")
    return day
