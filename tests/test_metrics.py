"""GET /metrics: Prometheus text, by route template, added up over every gunicorn worker."""
import os
import re
import subprocess
import sys
import textwrap
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service import metrics
from service.config import Settings
from service.regions import queries as regions

from .gunicorn_process import Served


def samples(text):
    """{(sample name, frozenset(labels)): value} from Prometheus text."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text, name, **labels):
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def scrape(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return response.get_data(as_text=True)


def test_requests_are_counted_by_route_template_never_by_raw_path(client, admin, reader):
    for code, name in (("62", "Kalimantan Tengah"), ("63", "Kalimantan Selatan")):
        assert client.put(f"/v1/provinces/{code}", json={"name": name}, headers=admin).status_code == 201
    labels = {"route": "/v1/provinces/<code>", "method": "GET", "status": "200"}
    before = value(scrape(client), "ktpel_http_requests_total", **labels)
    client.get("/v1/provinces/62", headers=reader)
    client.get("/v1/provinces/63", headers=reader)
    text = scrape(client)

    assert value(text, "ktpel_http_requests_total", **labels) == before + 2
    assert value(text, "ktpel_http_request_duration_seconds_count", route="/v1/provinces/<code>", method="GET") >= 2
    assert "/v1/provinces/62" not in text and "/v1/provinces/63" not in text


def test_unknown_paths_share_one_label(client):
    labels = {"route": "unmatched", "method": "GET", "status": "404"}
    before = value(scrape(client), "ktpel_http_requests_total", **labels)
    client.get("/no/such/path/1")
    client.get("/no/such/path/2")
    text = scrape(client)
    assert value(text, "ktpel_http_requests_total", **labels) == before + 2
    assert "/no/such/path" not in text


def test_pool_gauges_show_connections_in_use_and_the_pool_size(make_app):
    app = make_app(pool_max=3)
    client = app.test_client()
    pool = app.extensions["ktpel_pools"]["write"]
    conn = pool.getconn()
    try:
        held = scrape(client)
    finally:
        pool.putconn(conn)
    released = scrape(client)

    assert value(held, "ktpel_db_pool_connections_in_use", pool="write") == 1
    assert value(held, "ktpel_db_pool_connections_max", pool="write") == 3
    assert value(released, "ktpel_db_pool_connections_in_use", pool="write") == 0


def test_submission_outcomes_are_counted(client):
    before = samples(scrape(client))
    metrics.submission_outcome("created", 3)
    metrics.submission_outcome("rejected")
    after = samples(scrape(client))

    def delta(outcome):
        key = ("ktpel_submissions_total", frozenset({"outcome": outcome}.items()))
        return after.get(key, 0) - before.get(key, 0)

    assert (delta("created"), delta("unchanged"), delta("rejected")) == (3, 0, 1)


def test_submissions_through_the_api_count_created_unchanged_and_rejected(client, db, make_key):
    with db:
        regions.put_province(db, code="62", name="Kalimantan Tengah")
        regions.put_regency(db, code="62.09", name="Lamandau", kind="kabupaten", province_code="62")
    submitter = make_key("submitter", "62")
    count = {"regency_code": "62.09", "as_of": "2016-06-30", "recorded": 65223}
    before = samples(scrape(client))

    assert client.post("/v1/submissions", json=count, headers=submitter).status_code == 201
    assert client.post("/v1/submissions", json=count, headers=submitter).status_code == 200
    assert client.post("/v1/submissions", json={**count, "recorded": -1}, headers=submitter).status_code == 422
    batch = {"items": [{**count, "as_of": "2016-07-31"}, {**count, "as_of": "2016-08-31", "recorded": 1.5}]}
    assert client.post("/v1/submissions/batch", json=batch, headers=submitter).status_code == 422
    batch = {"items": [count, {**count, "as_of": "2016-07-31", "recorded": 65300}]}
    assert client.post("/v1/submissions/batch", json=batch, headers=submitter).status_code == 201
    after = samples(scrape(client))

    def delta(outcome):
        key = ("ktpel_submissions_total", frozenset({"outcome": outcome}.items()))
        return after.get(key, 0) - before.get(key, 0)

    # created: the first count and the batch's new one; unchanged: the repeat and the batch's repeat;
    # rejected: the bad count and both items of the refused batch (all or nothing)
    assert (delta("created"), delta("unchanged"), delta("rejected")) == (2, 2, 3)


def test_an_unknown_submission_outcome_is_a_programming_error():
    with pytest.raises(ValueError, match="outcome must be one of"):
        metrics.submission_outcome("accepted")


@pytest.mark.slow
def test_metrics_add_up_every_gunicorn_worker(database_url):
    requests = 40
    with Served(database_url, workers=2, pool_max=5) as served:
        for _ in range(requests):
            assert served.get("/healthz").status == 200
        # Each scrape may land on either worker; every one must see the whole count.
        scraped = [served.get("/metrics").body.decode() for _ in range(6)]
        pids = served.worker_pids()

    labels = {"route": "/healthz", "method": "GET", "status": "200"}
    counts = {value(text, "ktpel_http_requests_total", **labels) for text in scraped}
    # The start-up probes of Served also hit /healthz; never fewer than ours, and the same in every scrape.
    assert len(counts) == 1 and counts.pop() >= requests
    assert len(pids) == 2
    assert {value(text, "ktpel_db_pool_connections_max", pool="write") for text in scraped} == {10}


def test_serve_switches_an_early_imported_prometheus_client_to_multiprocess_mode(tmp_path):
    program = textwrap.dedent(f"""
        import os
        import prometheus_client  # imported before the folder is named, as a module-level import would
        from service.server import prepare_metrics_dir
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = {str(tmp_path)!r}
        prepare_metrics_dir()
        prometheus_client.Counter("probe_total", "probe", ["kind"]).labels(kind="x").inc()
        print(sorted(os.listdir({str(tmp_path)!r})))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    out = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True).stdout
    assert re.fullmatch(r"\['counter_\d+\.db'\]", out.strip())


@pytest.mark.slow
def test_recycled_workers_keep_the_metrics_and_the_server_serving(database_url):
    requests = 60
    with Served(database_url, workers=2, max_requests=10, max_requests_jitter=2) as served:
        first_pids = set(served.worker_pids())
        statuses = [served.get("/healthz").status for _ in range(requests)]
        time.sleep(1)  # the last recycled worker is replaced
        text = served.get("/metrics").body.decode()
        later_pids = set(served.worker_pids())

    assert statuses == [200] * requests
    assert not first_pids & later_pids, "MAX_REQUESTS recycled the workers"
    assert value(text, "ktpel_http_requests_total", route="/healthz", method="GET", status="200") >= requests
    assert value(text, "ktpel_db_pool_connections_max", pool="write") == 2 * Settings().pool_max
