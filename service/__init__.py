"""KTP-El coverage service: the application factory."""
import secrets
import time

from flask import Flask, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from . import auth, security, wire_errors
from .config import Settings
from .coverage.kept import KeptAnswers
from .db import make_pool, release_request_connection
from .errors import NotFound, register_error_handlers
from .web import ServiceJSONProvider, ServiceResponse

__all__ = ["create_app"]


def create_app(settings=None):
    """Build the app from settings (default: the environment). DATABASE_URL must be resolved by then."""
    settings = settings or Settings.from_environ()
    if not settings.database_url:
        raise RuntimeError("create_app needs a database_url; the CLI starts the embedded server when none is set")

    app = Flask(__name__)
    app.json = ServiceJSONProvider(app)
    app.response_class = ServiceResponse
    app.config["SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.url_map.strict_slashes = False

    write_pool = make_pool(settings, settings.database_url)
    read_pool = make_pool(settings, settings.database_read_url) if settings.database_read_url else write_pool
    app.extensions["ktpel_pools"] = {"write": write_pool, "read": read_pool}
    app.extensions["ktpel_kept_answers"] = KeptAnswers()  # coverage answers and their snapshots (coverage/kept.py)
    app.teardown_request(release_request_connection)  # the connection a key check kept (db.py)

    register_error_handlers(app)
    security.install(app)
    wire_errors.install()  # whichever way gunicorn runs this app, its own refusals are problem+json

    @app.before_request
    def assign_request_id():
        g.request_started = time.perf_counter()  # one clock for the log line and the latency metric
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if 0 < len(incoming) <= 200 and incoming.isprintable() else secrets.token_hex(12)

    @app.before_request
    def refuse_nul_in_the_path():
        # No resource is named with a NUL, and PostgreSQL text cannot hold one: never let it reach a query.
        if "\x00" in request.path:
            raise NotFound("There is no resource at this path.")

    @app.after_request
    def echo_request_id(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    # Imported here: prometheus_client must load after `serve` names PROMETHEUS_MULTIPROC_DIR.
    # Hooked after the request id, so every answer and log line, even a 413, carries it.
    from . import limits, logs, metrics

    metrics.init_app(app)
    logs.init_app(app, settings)
    limits.init_app(app)
    # Last, so it runs first: the log line and the metrics see a 401 it gives.
    app.after_request(auth.settle_key_check)
    if settings.proxy_fix_hops:
        hops = settings.proxy_fix_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops)

    from .audit.routes import blueprint as audit_blueprint
    from .contract import blueprint as contract_blueprint
    from .coverage.routes import blueprint as coverage_blueprint
    from .docs.routes import blueprint as docs_blueprint
    from .health.routes import blueprint as health_blueprint
    from .regions.routes import blueprint as regions_blueprint
    from .submissions.routes import blueprint as submissions_blueprint
    from .targets.routes import blueprint as targets_blueprint

    for blueprint in (
        health_blueprint,
        contract_blueprint,
        regions_blueprint,
        targets_blueprint,
        submissions_blueprint,
        coverage_blueprint,
        audit_blueprint,
        docs_blueprint,
    ):
        app.register_blueprint(blueprint)

    return app
