"""API keys: tokens, roles and scopes."""
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from functools import wraps

from flask import current_app, g, request

from . import db
from .errors import ApiError, Forbidden, Unauthorized
from .keys import queries

ROLES = ("reader", "submitter", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}
TOKEN_PREFIX = "ktpel"  # noqa: S105 - a label, not a secret
_TOKEN = re.compile(r"^ktpel_([a-z0-9]{8,32})_([A-Za-z0-9_-]{20,100})$")
_SCOPE = re.compile(r"[0-9]{2}(\.[0-9]{2})?\Z")


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    role: str
    scopes: tuple = ()

    def may(self, role):
        return _RANK[self.role] >= _RANK[role]

    def covers(self, regency_code):
        """Whether this key may write for the regency: admins anywhere, submitters in scope."""
        if self.role == "admin":
            return True
        return self.role == "submitter" and (regency_code in self.scopes or regency_code[:2] in self.scopes)


def hash_secret(secret):
    # The secret is 256 random bits, so a plain SHA-256 cannot be brute-forced.
    return hashlib.sha256(secret.encode()).hexdigest()


def valid_scope(code):
    return bool(_SCOPE.match(code))


def new_token():
    """A fresh (key id, token, token hash); the token is shown once and never stored."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, f"{TOKEN_PREFIX}_{key_id}_{secret}", hash_secret(secret)


def _id_and_hash(token):
    """(the key id a token names, the hash of its secret), or None for a token not of our form."""
    match = _TOKEN.match(token or "")
    if not match:
        return None
    key_id, secret = match.groups()
    return key_id, hash_secret(secret)


def authenticate(conn, token):
    """The active key the token belongs to, or None."""
    named = _id_and_hash(token)
    if named is None:
        return None
    key_id, token_hash = named
    row = queries.get_active_key(conn, key_id=key_id)
    if row is None or not hmac.compare_digest(row["token_hash"], token_hash):
        return None
    key = ApiKey(id=row["id"], name=row["name"], role=row["role"], scopes=tuple(row["scopes"]))
    _remember(key, token_hash)
    return key


# What this process has read of each key that it never changes: its token hash, name, role and
# scopes (keys are created and revoked, never edited; `keys revoke` and a new key change a role or
# a scope). Whether the key is still good is checked on the primary in every request all the same,
# in the request's first statement (_carry_key_check), and a key that fails that check is
# forgotten. Bounded: a process that has seen more keys than this starts over.
_KNOWN_KEYS = {}
_KNOWN_KEYS_MAX = 10_000


def _remember(key, token_hash):
    if len(_KNOWN_KEYS) >= _KNOWN_KEYS_MAX:
        _KNOWN_KEYS.clear()
    _KNOWN_KEYS[key.id] = (key, token_hash)


def _known_key(token):
    """The key a token names, from what this process knows of it: None when it has not read it yet;
    raises 401 when the token's secret is not the key's."""
    named = _id_and_hash(token)
    known = None if named is None else _KNOWN_KEYS.get(named[0])
    if known is None:
        return None
    if not hmac.compare_digest(known[1], named[1]):  # the hash this process read, the token's
        raise Unauthorized("The API key is unknown or revoked.")
    return known


def _carry_key_check(key, token_hash):
    """The request's first statement on the primary checks that the key is still as this process knows it."""

    def refusal():
        _KNOWN_KEYS.pop(key.id, None)
        return Unauthorized("The API key is unknown or revoked.")

    db.carry_check(db.CarriedCheck(
        queries.KEY_STILL_GOOD,
        {"id": key.id, "token_hash": token_hash, "role": key.role, "scopes": db.Array(list(key.scopes))},
        sqlstate=queries.KEY_REFUSED, refusal=refusal,
    ))


def requires(role):
    """Mark a view with the least role that may call it; checked before the view runs."""
    assert role in ROLES

    def mark(view):
        view.required_role = role

        @wraps(view)
        def guarded(*args, **kwargs):
            _admit(role)
            return view(*args, **kwargs)

        guarded.required_role = role
        return guarded

    return mark


def _bearer_token():
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _admit(role):
    token = _bearer_token()
    settings = current_app.config["SETTINGS"]
    if token is None:
        if role == "reader" and settings.public_read and request.method in ("GET", "HEAD"):
            g.api_key = None
            return
        raise Unauthorized("Send an API key as 'Authorization: Bearer <token>'.")
    # On the primary: a revoked key must stop working at once, whatever a replica lags. When the
    # request's own statements go to the primary (always without a replica; a GET with one reads
    # from the replica's pool), a key this process has read before is checked in the same query
    # string as the first of them; otherwise on its own, and the request keeps that connection for
    # its transactions on the primary.
    pools = current_app.extensions["ktpel_pools"]
    on_primary = pools["read"] is pools["write"] or request.method not in ("GET", "HEAD")
    known = _known_key(token) if on_primary else None
    if known is not None:
        key, token_hash = known
        _carry_key_check(key, token_hash)
    else:
        key = db.run_on_primary(lambda conn: authenticate(conn, token), keep_for_request=on_primary)
    if key is None:
        raise Unauthorized("The API key is unknown or revoked.")
    g.api_key = key
    if not key.may(role):
        raise Forbidden(f"This needs the {role} role; the key has the {key.role} role.")


def settle_key_check(response):
    """after_request: a request that sent no statement to the primary checks its key before it answers."""
    try:
        db.settle_check()
    except ApiError as exc:
        return current_app.make_response(current_app.handle_user_exception(exc))
    return response


def current_key():
    return getattr(g, "api_key", None)


def ensure_covers(regency_code):
    """403 unless the calling key may write for this regency."""
    key = current_key()
    if key is None or not key.covers(regency_code):
        raise Forbidden(f"The API key's scope does not include regency {regency_code}.")
