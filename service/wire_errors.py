"""Requests gunicorn refuses before the app sees them (request line too long, malformed headers) are
answered as problem+json too, like every other error of this API, instead of gunicorn's HTML page."""
import json
from http import HTTPStatus

from gunicorn import util

from .security import API_CONTENT_SECURITY_POLICY


def problem_bytes(status_int, reason, mesg):
    """The raw HTTP answer; gunicorn closes the connection after it."""
    status = HTTPStatus(status_int)
    detail = mesg if status_int < 500 and mesg else status.description
    body = json.dumps({"type": "about:blank", "title": status.phrase, "status": status_int, "detail": detail},
                      ensure_ascii=True).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "X-Frame-Options: DENY\r\n"
        "Referrer-Policy: no-referrer\r\n"
        f"Content-Security-Policy: {API_CONTENT_SECURITY_POLICY}\r\n"
        "Cache-Control: no-store\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


def write_problem(sock, status_int, reason, mesg):
    util.write_nonblock(sock, problem_bytes(status_int, reason, mesg))


def install():
    """Replace gunicorn's one error writer (gunicorn.util.write_error, same arguments) in this process.

    Called by create_app, so it holds in each gunicorn worker (and in the master with preload_app).
    """
    util.write_error = write_problem
