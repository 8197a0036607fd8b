"""One JSON line per request on stderr: who, what, how long; never the token or the body."""
import json

import pytest

from .gunicorn_process import Served


def request_lines(stderr, request_id=None):
    """The request lines in stderr, of one request when its id is given (another test's thread may log too)."""
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == "service.request"
            and (request_id is None or line["request_id"] == request_id)]


def test_each_request_logs_one_json_line_with_its_route_status_duration_and_key(client, admin, capsys):
    capsys.readouterr()
    token = admin["Authorization"].removeprefix("Bearer ")
    response = client.put("/v1/provinces/62", json={"name": "Kalimantan Tengah secret-body-text"},
                          headers={**admin, "X-Request-ID": "trace-62-put"})
    assert response.status_code == 201
    stderr = capsys.readouterr().err

    [line] = request_lines(stderr, "trace-62-put")
    assert response.headers["X-Request-ID"] == "trace-62-put"
    assert (line["method"], line["route"], line["status"]) == ("PUT", "/v1/provinces/<code>", 201)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["time"].endswith("Z")
    assert line["api_key_id"] == token.split("_")[1]
    assert token not in stderr and token.split("_", 2)[2] not in stderr  # the secret may hold "_"
    assert "secret-body-text" not in stderr


def test_a_request_without_an_id_gets_one_that_is_echoed_and_logged(client, capsys):
    capsys.readouterr()
    response = client.get("/healthz")
    [line] = request_lines(capsys.readouterr().err, response.headers["X-Request-ID"])
    assert len(response.headers["X-Request-ID"]) >= 16
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert line["api_key_id"] is None


def test_an_unknown_path_is_logged_without_a_route(client, capsys):
    capsys.readouterr()
    response = client.get("/v1/nothing-here")
    [line] = request_lines(capsys.readouterr().err, response.headers["X-Request-ID"])
    assert (line["route"], line["status"]) == (None, 404)


def test_log_level_warning_silences_request_lines(make_app, capsys):
    client = make_app(log_level="WARNING").test_client()
    capsys.readouterr()
    assert client.get("/healthz").status_code == 200
    assert request_lines(capsys.readouterr().err) == []


@pytest.mark.slow
def test_gunicorn_workers_write_json_request_lines_to_stderr(database_url):
    with Served(database_url, workers=2) as served:
        answer = served.get("/readyz", headers={"X-Request-ID": "probe-under-gunicorn"})
        assert answer.status == 200
    lines = served.json_log_lines()  # read once gunicorn has stopped: no line is half written
    text = served.log_text()
    [line] = [x for x in lines if x.get("request_id") == "probe-under-gunicorn"]
    assert (line["route"], line["status"], line["logger"]) == ("/readyz", 200, "service.request")
    # gunicorn's own lines are JSON too: a log shipper needs one format.
    assert len(lines) == len(text.splitlines())
    assert any(x["logger"] == "gunicorn.error" and "Booting worker" in x["message"] for x in lines)
