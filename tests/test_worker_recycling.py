"""gunicorn recycles a worker every max_requests; the service must go on answering (found by make bench)."""
import pytest

from bench.served import Service


@pytest.mark.slow
def test_service_keeps_answering_after_max_requests_recycles_its_workers(database_url):
    # Two workers: 150 requests give each about 75 to reach its 20, however the kernel deals them out.
    with Service(database_url, workers=2, extra_env={"MAX_REQUESTS": "20", "MAX_REQUESTS_JITTER": "1"}) as service:
        first_workers = set(service.worker_pids())
        statuses = [service.call("GET", "/healthz", timeout=10)[0] for _ in range(150)]
        assert statuses == [200] * 150
        assert service.process.poll() is None, "gunicorn's master shut down"
        assert not first_workers & set(service.worker_pids()), "the workers were never recycled"
