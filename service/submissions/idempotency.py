"""Idempotency-Key: the first answer to a request is kept per API key and replayed to its repeats.

The key is claimed in a transaction of its own, committed at once, so a repeat arriving while
the first request still runs finds the claim without an answer and gets 409. The answer is
stored in the same transaction as the write it describes: either both are committed or neither.
If the request fails, the claim is released and the repeat runs afresh.
"""
import hashlib
from dataclasses import dataclass
from http import HTTPStatus

from flask import current_app, request

from .. import db
from ..auth import current_key
from ..errors import Conflict, InvalidInput
from . import queries

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEPT_HEADERS = ("Location", "ETag", "Content-Type")


@dataclass(frozen=True)
class Claim:
    api_key_id: str
    key: str

    def remember(self, conn, response):
        """Store the answer, in the transaction of the write it answers."""
        queries.remember_answer(
            conn, api_key_id=self.api_key_id, key=self.key, status=response.status_code,
            body=response.get_data(as_text=True),
            headers={name: response.headers[name] for name in _KEPT_HEADERS if name in response.headers},
        )


def request_hash():
    """What makes two requests the same: method, path, query, content type and body bytes."""
    digest = hashlib.sha256()
    for part in (request.method, request.path, request.query_string.decode("latin-1"), request.mimetype):
        digest.update(part.encode() + b"\0")
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def answer_once(answer):
    """Run answer(claim) once per Idempotency-Key (claim None without the header); replay its answer."""
    key = request.headers.get(HEADER)
    if key is None:
        return answer(None)
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise InvalidInput(f"The {HEADER} header must be 1 to 255 printable characters.",
                           errors=[{"pointer": HEADER, "detail": "Must be 1 to 255 printable characters."}])
    api_key_id = current_key().id
    fingerprint = request_hash()
    with db.transaction() as conn:
        held = queries.claim_idempotency_key(conn, api_key_id=api_key_id, key=key, request_hash=fingerprint)
    if held is not None:
        return _replay(held, fingerprint)
    claim = Claim(api_key_id, key)
    try:
        return answer(claim)
    except BaseException:
        with db.transaction() as conn:
            queries.release_idempotency_key(conn, api_key_id=api_key_id, key=key)
        raise


def _replay(held, fingerprint):
    if held["request_hash"] != fingerprint:
        raise InvalidInput(
            f"This {HEADER} was already used with another request; use a new key for a new request.",
            errors=[{"pointer": HEADER, "detail": "Already used with a different request."}],
            slug="idempotency-key-reused", title="Idempotency-Key reused",
        )
    if held["status"] is None:
        raise Conflict(
            f"The first request with this {HEADER} is still being processed; retry shortly.",
            slug="idempotency-key-in-flight", title="Request in flight", headers={"Retry-After": "1"},
        )
    response = current_app.response_class(held["body"], status=HTTPStatus(held["status"]))
    for name, value in (held["headers"] or {}).items():
        response.headers[name] = value
    response.headers[REPLAYED_HEADER] = "true"
    return response
