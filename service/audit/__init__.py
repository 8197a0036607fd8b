"""The audit trail: every write, who made it, what it was before and after."""
from flask import g, has_request_context

from . import queries


def record(conn, *, action, resource, before=None, after=None):
    """Record a write in the same transaction as the write itself."""
    key = getattr(g, "api_key", None) if has_request_context() else None
    queries.record_event(
        conn,
        action=action,
        resource=resource,
        before=before,
        after=after,
        actor_key_id=key.id if key else None,
        actor_name=key.name if key else ("command line" if not has_request_context() else None),
        request_id=getattr(g, "request_id", None) if has_request_context() else None,
    )

