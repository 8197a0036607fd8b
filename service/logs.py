"""JSON log lines on stderr: one per request, and every other record of the service's loggers."""
import datetime as dt
import json
import logging
import sys
import time

from flask import g, has_request_context, request

REQUEST_LOGGER = "service.request"


class JsonFormatter(logging.Formatter):
    """One JSON object per line; a record logged inside a request carries its request id."""

    def format(self, record):
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context() and g.get("request_id"):
            line["request_id"] = g.request_id
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when the record is emitted (a test may swap it)."""

    def __init__(self):
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def configure(level):
    """Send the service's records to stderr as JSON at LOG_LEVEL (once per process)."""
    logger = logging.getLogger("service")
    logger.setLevel(level.upper())
    if not any(getattr(h, "ktpel_json", False) for h in logger.handlers):
        handler = StderrHandler()
        handler.setFormatter(JsonFormatter())
        handler.ktpel_json = True
        logger.addHandler(handler)


def request_fields(response, duration_seconds):
    """What a request line holds: never the token, the body or the query string."""
    key = g.get("api_key")
    return {
        "request_id": g.get("request_id"),
        "method": request.method,
        "route": request.url_rule.rule if request.url_rule is not None else None,
        "status": response.status_code,
        "duration_ms": round(duration_seconds * 1000, 2),
        "api_key_id": key.id if key is not None else None,
    }


def init_app(app, settings):
    configure(settings.log_level)
    log = logging.getLogger(REQUEST_LOGGER)

    @app.after_request
    def log_request(response):
        started = g.get("request_started")
        duration = time.perf_counter() - started if started is not None else 0.0
        log.info("request", extra={"fields": request_fields(response, duration)})
        return response
