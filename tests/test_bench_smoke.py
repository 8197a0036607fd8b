"""The benchmark's loader and harness on a sliver of the national dataset (the full run is `make bench`)."""
import datetime as dt
import json
import os
import subprocess
import sys
import time

import pytest

from bench import dataset
from service.config import Settings
from service.submissions.queries import effective_recorded

from .conftest import PROJECT


def test_loader_gives_every_regency_one_monotone_effective_count_a_day(server_url, monkeypatch):
    monkeypatch.setenv("BENCH_DATABASE_URL", server_url)
    plan = dataset.Plan.smoke()
    with dataset.scratch_database() as url:
        loaded = dataset.load(url, plan, log=lambda line: None)
        conn = dataset.connect(url)
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT code FROM regency ORDER BY code")
                regencies = [row["code"] for row in cur.fetchall()]
                cur.execute(
                    """
                    SELECT first.regency_code, first.as_of, first.recorded AS first_recorded
                      FROM submission first
                     WHERE first.retracted_at IS NULL
                       AND EXISTS (SELECT 1 FROM submission later
                                    WHERE later.regency_code = first.regency_code AND later.as_of = first.as_of
                                      AND later.id > first.id AND later.retracted_at IS NULL)
                    """
                )
                corrected = cur.fetchall()
                cur.execute("SELECT count(*) AS n FROM submission WHERE retracted_at IS NOT NULL")
                retracted = cur.fetchone()["n"]
                # the loader skips the per-row foreign key checks; the rows must still satisfy them
                cur.execute("SELECT count(*) AS n FROM submission WHERE regency_code NOT IN (SELECT code FROM regency)")
                orphans = cur.fetchone()["n"]
                cur.execute("SELECT regency_code, as_of, submission_id, recorded FROM regency_latest ORDER BY 1")
                latest = cur.fetchall()
                cur.execute(
                    """
                    SELECT DISTINCT ON (regency_code) regency_code, as_of, id AS submission_id, recorded
                      FROM submission WHERE retracted_at IS NULL ORDER BY regency_code, as_of DESC, id DESC
                    """
                )
                latest_in_submissions = cur.fetchall()
                days = _days(loaded["first_day"], plan.days)
                series = {code: [effective_recorded(conn, regency_code=code, as_of=day) for day in days]
                          for code in regencies}
        finally:
            conn.close()

    with open(dataset.WILAYAH / "regencies.csv", encoding="utf-8") as f:
        expected_regencies = sorted(line.split(",")[0] for line in f if line.startswith("62."))
    assert regencies == expected_regencies
    assert loaded["submissions"] == len(regencies) * plan.days + len(corrected) + retracted
    assert corrected and retracted, "the smoke plan must exercise corrections and retractions"
    assert orphans == 0
    assert len(latest) == len(regencies) and latest == latest_in_submissions  # loaded with triggers off
    if loaded["feed_changes"] is not None:  # every creation and every retraction is a change in the feed
        assert loaded["feed_changes"] == loaded["submissions"] + retracted
    for code, counts in series.items():
        assert None not in counts, f"{code} lacks a day"
        assert counts == sorted(counts), f"{code}: the effective counts are not monotone"
    for row in corrected:
        day_index = days.index(row["as_of"])
        assert series[row["regency_code"]][day_index] != row["first_recorded"], "a correction did not win"


def _days(first_day, n):
    first = dt.date.fromisoformat(first_day)
    return [first + dt.timedelta(days=i) for i in range(n)]


@pytest.mark.slow
def test_smoke_run_measures_healthz_reads_and_the_stack_floor_without_errors(server_url, tmp_path):
    out = tmp_path / "smoke.json"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "bench.run", "--smoke", "--json", str(out)], cwd=PROJECT,
                   env={**os.environ, "BENCH_DATABASE_URL": server_url}, check=True, timeout=60,
                   capture_output=True)
    # About 17 s here, most of it fixed (two gunicorns starting, runs of 1 s): a bound that still
    # catches a smoke run grown into a benchmark, with room for a VM three times slower to start.
    assert time.monotonic() - started < 45
    result = json.loads(out.read_text())
    assert result["loaded"]["regencies"] == 14
    for name in ("healthz", "registry"):
        row = result["scenarios"][name]
        assert row["requests"] > 0 and row["rps"] > 0
        assert row["status"]["200"] == row["requests"], f"{name}: not every answer was 200: {row['status']}"
        assert row["socket_errors"] == 0
        assert 0 < row["p50_ms"] <= row["p99_ms"]
        assert all(0 < mb < 1000 for mb in row["rss_mb"]) and len(row["rss_mb"]) == Settings.web_concurrency
        # How each run's connections fell on the workers, read halfway through it: all of them, somewhere.
        assert len(row["spreads"]) == row["runs"]
        assert all(sum(spread) == row["connections"] and len(spread) == Settings.web_concurrency
                   for spread in row["spreads"]), row["spreads"]
    assert result["scenarios"]["registry"]["ratio"] > 0
    assert len(result["scenarios"]["registry"]["floor_paired"]["spreads"]) == result["scenarios"]["registry"]["runs"]
    # The stack's floor: a bare app replaying the SQL the service sent, for reads and for POSTs.
    for name, status in (("province-stack", "200"), ("submission-stack", "201")):
        row = result["scenarios"][name]
        assert row["requests"] > 0 and row["status"][status] == row["requests"], f"{name}: {row['status']}"
    # A smoke run measures nothing that matters, so it leaves the kernel's scheduling as it is.
    assert "switched off" not in result["machine"]["scheduling"]
