"""Headers every answer carries, so that browsers and caches treat the API as what it is."""
from flask import request

# An API answer is data, never a page: nothing in it may load or run, nor may it be framed.
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"


def cache_control(response):
    """Who may keep this answer, and how.

    Coverage is live (a submission answered 201 is in the next read), so a kept read is revalidated
    each time, which its ETag makes a cheap 304. An answer to a request that carries an API key is
    for that key alone (private). Writes and errors are never kept. Static assets keep their own.
    """
    private = "Authorization" in request.headers
    if request.method not in ("GET", "HEAD") or response.status_code >= 400:
        policy = "no-store"
    elif "Cache-Control" in response.headers and not private:
        return response.headers["Cache-Control"]
    else:
        policy = "no-cache"
    return f"private, {policy}" if private else policy


def add_security_headers(response):
    headers = response.headers
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "no-referrer"
    headers.setdefault("Content-Security-Policy", API_CONTENT_SECURITY_POLICY)
    headers["Cache-Control"] = cache_control(response)
    return response


def install(app):
    app.after_request(add_security_headers)
