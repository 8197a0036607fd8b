"""What gunicorn refuses before the app runs is a problem+json answer too, and the contract says so."""
import http.client
import json
import socket
from urllib.parse import urlsplit

import pytest
import yaml

from .contract import SPEC
from .gunicorn_process import Served

pytestmark = pytest.mark.slow


def raw_exchange(base_url, request_bytes):
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request_bytes)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response, response.read()


@pytest.fixture(scope="module")
def served(database_url):
    with Served(database_url, workers=1) as served:
        base_url = served.url
        yield base_url


def test_request_line_too_long_is_a_414_problem(served):
    response, body = raw_exchange(served, b"GET /v1/provinces?q=" + b"x" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.status == 414
    assert response.getheader("Content-Type") == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == 414 and problem["type"] == "about:blank"
    assert response.getheader("Cache-Control") == "no-store"
    assert response.getheader("X-Content-Type-Options") == "nosniff"


def test_malformed_header_is_a_400_problem(served):
    response, body = raw_exchange(served, b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: \x00\r\n\r\n")
    assert response.status == 400
    assert response.getheader("Content-Type") == "application/problem+json"
    assert json.loads(body)["status"] == 400
    assert b"<html" not in body


def test_every_operation_with_parameters_documents_uri_too_long():
    spec = yaml.safe_load(SPEC.read_text())
    missing = [
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in ("get", "put", "post", "delete", "patch")
        and (operation.get("parameters") or item.get("parameters"))
        and "414" not in operation["responses"]
    ]
    assert not missing, f"these take parameters, so their request line can be too long; add 414: {missing}"
