"""Limits: the statement timeout, the body size (before the body is read), page sizes, gunicorn settings."""
import gc
import socket
import time

import pytest
import yaml
from gunicorn.workers.sync import SyncWorker
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.urls import iri_to_uri

from service import web
from service.config import Settings
from service.limits import BATCH_ENDPOINTS
from service.server import CoverageServer, ThreadWorker, gunicorn_options

from .conftest import count_rows
from .contract import SPEC
from .gunicorn_process import Served


def test_a_query_past_the_statement_timeout_answers_503_and_frees_the_worker(make_app, make_key, db):
    reader = make_key("reader")
    client = make_app(statement_timeout_ms=300).test_client()
    with db.cursor() as cur:
        # Another session holds the table: the list query waits on the lock until the timeout cancels it.
        cur.execute("LOCK TABLE province IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        response = client.get("/v1/provinces", headers=reader)
        seconds = time.monotonic() - started
    db.rollback()

    assert response.status_code == 503
    assert response.json["type"] == "urn:ktpel-coverage:problem:statement-timeout"
    assert int(response.headers["Retry-After"]) > 0
    assert "LOCK" not in response.get_data(as_text=True) and "province" not in response.json["detail"]
    assert seconds < 3
    assert client.get("/v1/provinces", headers=reader).status_code == 200


def test_a_body_over_one_mebibyte_is_413_and_stores_nothing(client, admin, db):
    response = client.put("/v1/provinces/62", json={"name": "x" * (1024 * 1024)}, headers=admin)
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/problem+json"
    assert count_rows(db, "province") == 0


def test_the_batch_endpoint_takes_the_larger_batch_limit(make_app, make_key, admin):
    office = make_key("submitter", "62")
    client = make_app(max_body_bytes=100, max_batch_body_bytes=1000).test_client()

    def batch(size):
        body = b'{"items": [' + b" " * (size - 13) + b"]}"
        assert len(body) == size
        return client.post("/v1/submissions/batch", data=body, content_type="application/json", headers=office)

    assert batch(500).status_code == 422  # read and validated: an empty batch
    assert batch(1001).status_code == 413
    assert client.put("/v1/provinces/62", json={"name": "x" * 200}, headers=admin).status_code == 413


def test_every_batch_endpoint_is_a_route(app):
    assert BATCH_ENDPOINTS <= set(app.view_functions)


@pytest.mark.slow
def test_413_is_answered_before_the_body_is_sent(database_url, make_key):
    admin = make_key("admin")
    with Served(database_url, workers=1) as served, socket.create_connection(("127.0.0.1", served.port)) as conn:
        conn.settimeout(5)
        # Only the headers: a server that read the body first would wait here until the timeout.
        conn.sendall(f"PUT /v1/provinces/62 HTTP/1.1\r\nHost: x\r\nAuthorization: {admin['Authorization']}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n".encode())
        status_line = conn.recv(4096).split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 413")


def paged_operations():
    spec = yaml.safe_load(SPEC.read_text())
    def takes_limit(operation):
        return any(p.get("$ref", "").endswith("/Limit") for p in operation.get("parameters", []))

    return sorted(path for path, item in spec["paths"].items() if "{" not in path and takes_limit(item.get("get", {})))


def test_some_lists_are_paged():
    assert "/v1/audit-events" in paged_operations()


@pytest.mark.parametrize("path", paged_operations())
def test_a_page_holds_at_most_1000_items(client, admin, path):
    assert client.get(f"{path}?limit=1000", headers=admin).status_code == 200
    too_many = client.get(f"{path}?limit=1001", headers=admin)
    assert too_many.status_code == 422
    assert [e["pointer"] for e in too_many.json["errors"]] == ["limit"]


def test_gunicorn_takes_its_settings_from_the_environment():
    settings = Settings.from_environ({
        "WEB_CONCURRENCY": "5", "THREADS": "8", "WORKER_TIMEOUT_SECONDS": "60", "GRACEFUL_TIMEOUT_SECONDS": "25",
        "KEEPALIVE_SECONDS": "10", "MAX_REQUESTS": "500", "MAX_REQUESTS_JITTER": "50",
        "FORWARDED_ALLOW_IPS": "10.0.0.7", "PORT": "9001",
    })
    cfg = CoverageServer(settings).cfg  # gunicorn validates every value here

    assert (cfg.workers, cfg.threads, cfg.timeout, cfg.graceful_timeout, cfg.keepalive) == (5, 8, 60, 25, 10)
    assert (cfg.max_requests, cfg.max_requests_jitter) == (500, 50)
    assert cfg.forwarded_allow_ips == ["10.0.0.7"]
    assert cfg.address == [("127.0.0.1", 9001)]
    assert cfg.worker_class is ThreadWorker  # gthread, with the service's quit (server.ThreadWorker)
    assert cfg.accesslog is None
    assert cfg.settings["control_socket_disable"].get() is True


def test_gunicorn_defaults_recycle_workers_with_jitter_and_trust_only_loopback():
    options = gunicorn_options(Settings())
    assert options["max_requests"] > 0 and 0 < options["max_requests_jitter"] < options["max_requests"]
    assert options["forwarded_allow_ips"] == "127.0.0.1,::1"
    assert options["worker_class"] == "service.server.ThreadWorker"
    assert CoverageServer(Settings(worker_class="sync", threads=1)).cfg.worker_class is SyncWorker


def test_a_worker_freezes_what_it_holds_once_its_app_is_built():
    freeze = gunicorn_options(Settings())["post_worker_init"]
    gc.unfreeze()
    try:
        freeze(None)
        assert gc.get_freeze_count() > 10_000  # the modules, the app, its routes and schemas
    finally:
        gc.unfreeze()


def test_forwarded_headers_are_ignored_unless_a_proxy_is_configured(make_app, admin):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "coverage.kemendagri.go.id"}
    direct = make_app().test_client().put("/v1/provinces/62", json={"name": "Kalimantan Tengah"},
                                          headers={**admin, **forwarded})
    behind_proxy = make_app(proxy_fix_hops=1).test_client().put("/v1/provinces/63", json={"name": "Kalsel"},
                                                                headers={**admin, **forwarded})
    assert direct.headers["Location"] == "http://127.0.0.1:8000/v1/provinces/62"
    assert behind_proxy.headers["Location"] == "https://coverage.kemendagri.go.id/v1/provinces/63"


def test_every_operation_that_takes_a_body_documents_its_413():
    spec = yaml.safe_load(SPEC.read_text())
    undocumented = [
        (method, path) for path, item in spec["paths"].items() for method, operation in item.items()
        if "requestBody" in operation and "413" not in operation.get("responses", {})
    ]
    assert undocumented == []


@settings(max_examples=300)
@given(url=st.from_regex(web._PLAIN_URL, fullmatch=True))
def test_a_location_sent_as_it_is_is_one_werkzeug_would_leave_unchanged(url):
    try:
        converted = iri_to_uri(url)
    except (UnicodeError, ValueError):  # a host IDNA refuses or a port out of range: never one of ours
        return
    assert converted == url


@pytest.mark.parametrize(("host", "location"), [
    ("127.0.0.1:8000", "http://127.0.0.1:8000/v1/provinces/62"),
    ("Coverage.Kemendagri.GO.ID", "http://coverage.kemendagri.go.id/v1/provinces/62"),
    ("kependudukan.jakarta.go.id:8443", "http://kependudukan.jakarta.go.id:8443/v1/provinces/62"),
    ("xn--bcher-kva.example", "http://xn--bcher-kva.example/v1/provinces/62"),  # an IDN host, as clients send it
])
def test_the_location_of_a_created_resource_is_the_uri_werkzeug_would_send(make_app, admin, host, location):
    response = make_app().test_client().put("/v1/provinces/62", json={"name": "Kalimantan Tengah"},
                                            headers={**admin, "Host": host})

    assert response.status_code == 201
    assert response.headers.getlist("Location") == [location]
    assert location == iri_to_uri(f"http://{host}/v1/provinces/62")
