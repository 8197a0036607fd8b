"""Prometheus metrics, correct across gunicorn workers (prometheus_client multiprocess mode).

`ktpel-coverage serve` names an empty PROMETHEUS_MULTIPROC_DIR before the workers fork; each
worker writes its samples there and GET /metrics adds up every worker's files. Without that
variable (tests, a single process) the metrics live in this process only.

Other areas call `submission_outcome("created" | "unchanged" | "rejected", n)`.
"""
import os
import time

from flask import Blueprint, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector

from .server import METRICS_DIR_ENV

if os.environ.get(METRICS_DIR_ENV) and prometheus_values.ValueClass is prometheus_values.MutexValue:
    raise RuntimeError(f"prometheus_client was imported before {METRICS_DIR_ENV} was set; /metrics would be per worker")

UNMATCHED_ROUTE = "unmatched"  # 404s: never the raw path, which would make a label per URL
SUBMISSION_OUTCOMES = ("created", "unchanged", "rejected")

REQUESTS = Counter(
    "ktpel_http_requests_total", "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "ktpel_http_request_duration_seconds", "Time from the request reaching the app to its answer.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
POOL_IN_USE = Gauge(
    "ktpel_db_pool_connections_in_use", "Database connections checked out, summed over live workers.",
    ["pool"], multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "ktpel_db_pool_connections_max", "Database connections the pools may open, summed over live workers.",
    ["pool"], multiprocess_mode="livesum",
)
SUBMISSIONS = Counter(
    "ktpel_submissions_total", "Submissions by outcome: created, unchanged (a repeat), rejected (4xx).",
    ["outcome"],
)

blueprint = Blueprint("metrics", __name__)


# Each child bound on its first use: labels() takes a lock and builds a key on every call, on every
# write's path. Not at import: no sample may exist before server.prepare_metrics_dir() has chosen
# the multiprocess mode (a sample made earlier would stay in this process only).
_SUBMISSIONS_BY_OUTCOME = {}


def submission_outcome(outcome, n=1):
    """Count n submissions with this outcome (a batch counts each item)."""
    if outcome not in SUBMISSION_OUTCOMES:
        raise ValueError(f"outcome must be one of {SUBMISSION_OUTCOMES}, not {outcome!r}")
    child = _SUBMISSIONS_BY_OUTCOME.get(outcome)
    if child is None:
        child = _SUBMISSIONS_BY_OUTCOME[outcome] = SUBMISSIONS.labels(outcome=outcome)
    child.inc(n)


def route_of_request():
    """The route template (/v1/regencies/<code>), never the raw path."""
    return request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE


def observe_pool(name, pool):
    """Keep the pool gauges current: the pool calls back on every checkout and return."""
    POOL_SIZE.labels(pool=name).set(pool.size)
    in_use = POOL_IN_USE.labels(pool=name)
    in_use.set(0)
    pool.on_usage_change = in_use.set


def init_app(app):
    pools = app.extensions["ktpel_pools"]
    observe_pool("write", pools["write"])
    if pools["read"] is not pools["write"]:
        observe_pool("read", pools["read"])

    @app.after_request
    def count_request(response):
        started = g.get("request_started")
        if started is not None:
            route = route_of_request()
            LATENCY.labels(route=route, method=request.method).observe(time.perf_counter() - started)
            REQUESTS.labels(route=route, method=request.method, status=str(response.status_code)).inc()
        return response

    app.register_blueprint(blueprint)


@blueprint.get("/metrics")
def metrics():
    if os.environ.get(METRICS_DIR_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    response = current_app.response_class(generate_latest(registry), mimetype="text/plain")
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
