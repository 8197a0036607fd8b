"""`make bench`: load the national dataset into a fresh database and measure every scenario beside its floor.

    python -m bench.run                 # the full run (about 1.9 million submissions), see bench/RESULTS.md
    python -m bench.run --smoke         # a sliver: one province, 30 days, healthz, two reads, the stack's floor

Every scenario runs against `ktpel-coverage serve` (gunicorn, gthread, its default WEB_CONCURRENCY and THREADS) on a
free loopback port, driven by wrk; each is run several times and the median of each figure is reported.
"""
import argparse
import contextlib
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

import psycopg2.extensions

from . import dataset, explain, load, profiling, queries, scheduler, sql_floor, stack_floor, waits
from .cpu import CpuAccount
from .served import Service

FULL_SCENARIOS = ("healthz", "registry", "province", "province-public", "nation", "regency", "regency-history",
                  "province-history", "feed",
                  "submission", "stack", "batch", "mixed")
SMOKE_SCENARIOS = ("healthz", "registry", "province", "stack")
SUBMITTING_SYSTEMS = 64  # regency systems with a key of their own scoped to their regency


@dataclass
class Target:
    """What a scenario must reach, against its floor."""
    text: str
    check: object  # callable(row) -> bool


def machine():
    def first_line(path, prefix):
        try:
            with open(path) as f:
                return next((line.split(":", 1)[1].strip() for line in f if line.startswith(prefix)), "?")
        except OSError:
            return "?"

    wrk = "absent (Python generator)"
    if load.wrk_available():
        wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("[")[0].strip()
    return {
        "cpus": os.cpu_count(), "cpu_model": first_line("/proc/cpuinfo", "model name"),
        "memory": first_line("/proc/meminfo", "MemTotal"), "kernel": platform.release(),
        "python": platform.python_version(), "load_generator": wrk,
        "autogroup_before_run": scheduler.autogroup(),
    }


def _cpu_ms_per_request(results, cpu):
    """The median over runs of the CPU the workers and the database spent per answered request."""
    cores = os.cpu_count() or 1
    all_requests = [sum(job["rps"] for job in r) for r in results]
    return statistics.median(
        (c["workers"] + c["database"]) * cores * 1000 / n for c, n in zip(cpu, all_requests, strict=True) if n
    )


class Bench:
    def __init__(self, args, url, loaded, service):
        self.args, self.url, self.loaded, self.service = args, url, loaded, service
        self.database_name = psycopg2.extensions.parse_dsn(url)["dbname"]
        self.rows = {}
        conn = dataset.connect(url)
        try:
            with conn:
                self.regencies = queries.regency_codes(conn)
                self.provinces = sorted({c[:2] for c in self.regencies})
                systems = self.regencies[:: max(1, len(self.regencies) // SUBMITTING_SYSTEMS)][:SUBMITTING_SYSTEMS]
                counts = queries.current_counts(conn, regency_codes=systems, as_of=loaded["last_day"])
        finally:
            conn.close()
        self.reader = dataset.create_key(url, "reader")
        self.reader_headers = {"Authorization": f"Bearer {self.reader}"}
        self.submitters = [(code, dataset.create_key(url, "submitter", [code], name=f"Disdukcapil {code}"),
                            counts.get(code, 0)) for code in systems]

    def available(self, path, method="GET"):
        """Whether the service has the route yet (it is being built in parallel)."""
        status, _ = self.service.call(method, path, token=self.reader, body={} if method == "POST" else None)
        return status not in (404, 405)

    def measure(self, name, request, jobs, *, target=None, floor=None, paired=None, beside=None):
        """Warm up, then run the jobs `runs` times; the row holds the medians of the first job's figures.

        Against the healthz floor, each run follows a run of GET /healthz on the same service with
        the same connections (paired, unless paired=False: a service whose /healthz is not the
        service's), and the ratio is taken to those runs' median: the machine drifts by up to half
        between runs, so a floor measured at the start of the run is not the floor of a scenario's minute.
        beside, (name, request, jobs): another scenario measured in turn with this one, each of its
        runs just before one of this one's, for the same reason (the mixed load and its idle reads);
        its row is made too, before this one's, and this one's p99 is given over its p99.
        """
        seconds, runs = self.args.seconds, self.args.runs
        paired = floor == "healthz" if paired is None else paired
        load.run_together(self.service.base_url, jobs, seconds=max(1, seconds // 3))
        results, cpu, floor_results, floor_cpu, beside_results, beside_cpu = [], [], [], [], [], []
        for _ in range(runs):
            if paired:
                self._run(floor_results, floor_cpu, [(load.Workload("healthz", ["/healthz"]), jobs[0][1])])
            if beside:
                # Unmeasured first, as the scenario's own warm-up: after the runs before it (POSTs,
                # for the idle reads) the workers' kept answers are stale and would be computed
                # again in the measured run, raising its p99.
                load.run_together(self.service.base_url, beside[2], seconds=max(1, seconds // 3))
                self._run(beside_results, beside_cpu, beside[2])
            self._run(results, cpu, jobs)
        if beside:
            self._record(self._row(beside[0], beside[1], beside_results, beside_cpu), beside[2])
        row = self._row(name, request, results, cpu)
        if beside:
            row["ratio_to_idle_p99"] = row["p99_ms"] / self.rows[beside[0]]["p99_ms"]
            row["pair_p99_ratios"] = [r[0]["p99_ms"] / b[0]["p99_ms"]
                                      for r, b in zip(results, beside_results, strict=True)]
        if floor:
            row["floor"] = floor
            if paired:
                floor_row = {"rps": load.median_of([r[0] for r in floor_results])["rps"],
                             "cpu_ms_per_request": _cpu_ms_per_request(floor_results, floor_cpu)}
                floor_row["spreads"] = [f[0]["spread"] for f in floor_results]
                row["floor_paired"] = floor_row
                # Each run over the healthz run just before it: how far the pairs spread around the
                # ratio of the medians, which the target is judged on.
                row["pair_ratios"] = [r[0]["rps"] / f[0]["rps"] for r, f in zip(results, floor_results, strict=True)]
            else:
                floor_row = self.rows[floor]
            row["ratio"] = row["rps"] / floor_row["rps"]
            # What one request costs the service and its database in CPU, whoever else uses the
            # machine: with the cores to themselves, their throughputs would be in this ratio.
            row["alone_ratio"] = floor_row["cpu_ms_per_request"] / row["cpu_ms_per_request"]
        if target:
            row["target"] = target.text
            row["met"] = bool(target.check(row))
        self._record(row, jobs)
        return row

    def _row(self, name, request, results, cpu):
        """A scenario's row: the medians of its runs' figures (the first job's; the others' under "others")."""
        medians = [load.median_of([r[i] for r in results]) for i in range(len(results[0]))]
        row = {"scenario": name, "request": request, **medians[0], "rss_mb": self.service.worker_rss_mb(),
               "cpu": {k: statistics.median(c[k] for c in cpu) for k in cpu[0]}}
        row["cpu_ms_per_request"] = _cpu_ms_per_request(results, cpu)
        row["spreads"] = [r[0]["spread"] for r in results]
        if len(medians) > 1:
            row["others"] = medians[1:]
        return row

    def _record(self, row, jobs):
        self.rows[row["scenario"]] = row
        self._print_row(row)
        if self.args.profile and profiling.available():
            self.profile(row["scenario"], jobs)

    def _run(self, results, cpu, jobs):
        """One measured run of the jobs: its figures into results, the CPU shares it saw into cpu.

        Halfway through, how the run's connections fell on the workers is read into the first
        job's figures ("spread"): a run with most of them on one worker is a run on one core.
        """
        account = CpuAccount(self.service, self.database_name)
        spread = []
        reading = threading.Timer(self.args.seconds / 2, lambda: spread.extend(self.service.connections_per_worker()))
        reading.start()
        results.append(load.run_together(self.service.base_url, jobs, seconds=self.args.seconds))
        reading.join()
        cpu.append(account.shares())
        results[-1][0]["spread"] = spread

    def profile(self, name, jobs):
        """One more run with py-spy on the workers (not measured: sampling slows them a little)."""
        sampling = profiling.Sampling(self.service.worker_pids(), self.args.seconds)
        load.run_together(self.service.base_url, jobs, seconds=self.args.seconds)
        summary = sampling.summary()
        profiling.PROFILES.mkdir(exist_ok=True)
        (profiling.PROFILES / f"{name}.txt").write_text(f"{name}: {jobs[0][0].name}\n{summary}\n")
        print("    " + "\n    ".join(summary.splitlines()[3:9]), flush=True)

    def unavailable(self, name, request, why):
        self.rows[name] = {"scenario": name, "request": request, "unavailable": why}
        print(f"  {name:18} not available: {why}", flush=True)

    def _print_row(self, row):
        ratio = f" = {row['ratio']:.0%} of {_floor_text(row)}" if "ratio" in row else ""
        alone = f" ({row['alone_ratio']:.0%} by CPU cost)" if "alone_ratio" in row else ""
        met = "" if "met" not in row else ("  target met" if row["met"] else f"  TARGET MISSED ({row['target']})")
        bad = row["socket_errors"] + row["status"]["4xx"] + row["status"]["5xx"]
        errors = f"  {bad} errors/4xx/5xx!" if bad else ""
        cpu = row["cpu"]
        print(f"  {row['scenario']:18} c={row['connections']:<3} {row['rps']:8.0f} req/s  p50 {row['p50_ms']:6.1f} ms"
              f"  p99 {row['p99_ms']:7.1f} ms{ratio}{alone}  {row['cpu_ms_per_request']:.2f} CPU ms/req"
              f"  rss {max(row['rss_mb'] or [0]):.0f} MB{met}{errors}"
              f"  cpu: workers {cpu['workers']:.0%} db {cpu['database']:.0%} rest {cpu['everything_else']:.0%}"
              f" idle {cpu['idle']:.0%} (load {cpu['load_average_1m']}){_spreads_text(row)}", flush=True)

    def get(self, name, paths, **kwargs):
        return load.Workload(name=name, paths=paths, headers=self.reader_headers, **kwargs)

    def run(self, scenarios):
        c = self.args.connections
        if "healthz" in scenarios:
            self.measure("healthz", "GET /healthz", [(load.Workload("healthz", ["/healthz"]), c)])
        last, first = self.loaded["last_day"], self.loaded["first_day"]
        reads = {
            "registry": ("GET /v1/regencies/{code}, the regencies in turn (auth + one small query)",
                         [f"/v1/regencies/{r}" for r in self.regencies], None),
            "province": ("GET /v1/provinces/{code}/coverage, the provinces in turn",
                         [f"/v1/provinces/{p}/coverage" for p in self.provinces],
                         Target(">= 50% of healthz req/s", lambda r: r["ratio"] >= 0.5)),
            "nation": ("GET /v1/coverage", ["/v1/coverage"],
                       Target("p99 < 50 ms at 4 connections", lambda r: r["p99_ms"] < 50)),
            "regency": ("GET /v1/regencies/{code}/coverage, the regencies in turn",
                        [f"/v1/regencies/{r}/coverage" for r in self.regencies], None),
            "regency-history": ("GET /v1/regencies/{code}/coverage/history, ten years by month",
                                [f"/v1/regencies/{r}/coverage/history?from={first}&to={last}&interval=month"
                                 for r in self.regencies], None),
            "province-history": ("GET /v1/provinces/{code}/coverage/history, ten years by month",
                                 [f"/v1/provinces/{p}/coverage/history?from={first}&to={last}&interval=month"
                                  for p in self.provinces], None),
        }
        for name, (request, paths, target) in reads.items():
            if name not in scenarios:
                continue
            if not self.available(paths[0]):
                self.unavailable(name, request, f"{paths[0]} answers 404")
                continue
            connections = 4 if name == "nation" else c
            self.measure(name, request, [(self.get(name, paths), connections)], target=target, floor="healthz")
            if name == "province" and not self.args.smoke:
                self.database_floor("province-sql", "the province answer", lambda: sql_floor.province_scripts(
                    self.url, self.reader, self.provinces), share=0.5)
        if "province-public" in scenarios and self.available(reads["province"][1][0]):
            self.province_without_auth(reads["province"][1])
        if not self.args.smoke:
            self.explain(first, last)
        if "feed" in scenarios:
            self.feed()
        if "submission" in scenarios:
            self.submission()
            if not self.args.smoke:
                self.database_floor("submission-sql", "a POST", lambda: sql_floor.submission_scripts(
                    self.url, [(code, token) for code, token, _ in self.submitters], self.loaded["last_day"]),
                    share=0.3)
        if "stack" in scenarios:
            self.stack_floor()
        if "batch" in scenarios:
            self.batch()
        if "mixed" in scenarios:
            self.mixed()

    def database_floor(self, name, answer, scripts, *, share):
        """The SQL behind an answer alone, replayed by pgbench (bench/sql_floor.py): what the database allows.

        An answer at `share` of healthz's throughput, with the CPUs full, may cost at most healthz's
        CPU per request divided by `share`, Python and PostgreSQL together; the row shows what
        PostgreSQL alone spends on the answer's statements.
        """
        request = f"the SQL of {answer} alone (as the service sends it), replayed by pgbench; CPU: PostgreSQL's"
        if not sql_floor.pgbench():
            self.unavailable(name, request, "pgbench not found")
            return
        scripts = scripts()
        replays = [sql_floor.replay(self.url, self.database_name, scripts, clients=self.args.connections,
                                    seconds=self.args.seconds) for _ in range(self.args.runs)]
        healthz = self.rows["healthz"]
        row = {"scenario": name, "request": request, "connections": self.args.connections,
               "rps": statistics.median(r[0] for r in replays),
               "cpu_ms_per_request": statistics.median(r[1] for r in replays), "floor": "healthz"}
        row["ratio"] = row["rps"] / healthz["rps"]
        row["budget_ms"] = healthz["cpu_ms_per_request"] / share
        self.rows[name] = row
        print(f"  {name:18} c={row['connections']:<3} {row['rps']:8.0f} tx/s  = {row['ratio']:.0%} of healthz"
              f"  PostgreSQL {row['cpu_ms_per_request']:.2f} CPU ms/tx; at {share:.0%} of healthz an answer may"
              f" cost {row['budget_ms']:.2f} CPU ms in all (healthz {healthz['cpu_ms_per_request']:.2f})",
              flush=True)

    def stack_floor(self):
        """The province answer and a POST from a bare Flask app sending the service's own SQL (bench/stack_floor.py).

        Measured beside the service's healthz: the most any code of ours could reach for these answers.
        """
        if "healthz" not in self.rows:
            raise SystemExit("the stack scenario is measured against healthz: add healthz to --only")
        provinces = sql_floor.province_statements(self.url, self.reader, self.provinces)
        prepares = dict(sql_floor.RecordingCursor.prepared)  # each recording starts its own list
        submitters = [(code, token) for code, token, _ in self.submitters]
        submissions = sql_floor.submission_statements(self.url, submitters, self.loaded["last_day"])
        prepares.update(sql_floor.RecordingCursor.prepared)
        with tempfile.NamedTemporaryFile("w", prefix="ktpel-bench-stack-", suffix=".json") as spec:
            stack_floor.write_spec(spec.name, url=self.url, prepares=prepares.values(),
                                   provinces=provinces, submissions=submissions)
            with Service(self.url, module="bench.stack_floor", arguments=(),
                         extra_env={stack_floor.SPEC_ENV: spec.name}) as bare:
                measured, self.service = self.service, bare
                try:
                    self.measure("stack-healthz", "the bare app's GET /healthz (no log line, no metrics)",
                                 [(load.Workload("stack-healthz", ["/healthz"]), self.args.connections)],
                                 floor="healthz", paired=False)
                    self.measure("province-stack", "the province answers' SQL from the bare app, rows as JSON",
                                 [(self.get("province-stack", [f"/v1/provinces/{p}/coverage" for p in self.provinces]),
                                   self.args.connections)], floor="healthz", paired=False)
                    self.measure("submission-stack", "a POST's SQL from the bare app, 64 regency systems",
                                 [(self.submissions_workload(), self.args.connections)], floor="healthz",
                                 paired=False)
                finally:
                    self.service = measured

    def province_without_auth(self, paths):
        """The province answer from a second service with PUBLIC_READ=true: what the key check costs."""
        with Service(self.url, extra_env={"PUBLIC_READ": "true"}) as public:
            measured, self.service = self.service, public
            try:
                self.measure("province-public", "the province answers with PUBLIC_READ=true, no key checked",
                             [(load.Workload("province-public", paths), self.args.connections)], floor="healthz")
            finally:
                self.service = measured

    def explain(self, first, last):
        """EXPLAIN ANALYZE of every statement behind the read answers, into bench/profiles/explain-*.txt."""
        province = max(self.provinces, key=lambda p: sum(r.startswith(p + ".") for r in self.regencies))
        regency = self.regencies[len(self.regencies) // 2]
        requests = [
            ("nation", "/v1/coverage"), ("province", f"/v1/provinces/{province}/coverage"),
            ("regency", f"/v1/regencies/{regency}/coverage"),
            ("regency-history", f"/v1/regencies/{regency}/coverage/history?from={first}&to={last}&interval=month"),
            ("province-history", f"/v1/provinces/{province}/coverage/history?from={first}&to={last}&interval=month"),
            ("feed", "/v1/submissions?limit=100"),
        ]
        requests = [(name, path) for name, path in requests if self.available(path)]
        if not requests:
            return
        plans = explain.explain(self.url, requests)
        print("  EXPLAIN ANALYZE (bench/profiles/explain-*.txt), execution ms of each statement:", flush=True)
        for name, text in plans.items():
            times = ", ".join(f"{t:.2f}" for t in explain.execution_times(text))
            print(f"    {name:18} {text.splitlines()[0].split(' -> ')[1]:>4}  {times}", flush=True)
            self.rows.get(name, {})["statement_ms"] = explain.execution_times(text)

    def feed(self):
        request = "GET /v1/submissions?limit=100, first pages and a follower's next pages"
        status, page = self.service.call("GET", "/v1/submissions?limit=100", token=self.reader)
        if status != 200:
            self.unavailable("feed", request, f"GET /v1/submissions answers {status}")
            return
        paths = ["/v1/submissions?limit=100"]
        for _ in range(8):  # a follower's next pages, by the cursors the service hands out
            if not page or not page.get("next_cursor"):
                break
            paths.append(f"/v1/submissions?limit=100&cursor={page['next_cursor']}")
            status, page = self.service.call("GET", paths[-1], token=self.reader)
        paths += [f"/v1/submissions?limit=100&regency={r}" for r in self.regencies[::50]]
        self.measure("feed", request, [(self.get("feed", paths), self.args.connections)], floor="healthz")

    def submissions_workload(self):
        return load.Workload("submission", submitters=self.submitters, as_of=self.loaded["last_day"])

    def submission(self):
        request = f"POST /v1/submissions, {len(self.submitters)} regency systems, a new count each"
        if not self.available("/v1/submissions", method="POST"):
            self.unavailable("submission", request, "POST /v1/submissions answers 404/405")
            return
        jobs = [(self.submissions_workload(), self.args.connections)]
        self.measure("submission", request, jobs,
                     target=Target(">= 30% of healthz req/s", lambda r: r["ratio"] >= 0.3), floor="healthz")
        if not self.args.smoke:
            self.sample_waits("submission", jobs)
            self.submission_without_flush(request, jobs)

    def sample_waits(self, name, jobs):
        """One more run, not measured, with the database's sessions sampled (bench/waits.py)."""
        with waits.Sampling(self.url, self.database_name) as sampling:
            load.run_together(self.service.base_url, jobs, seconds=self.args.seconds)
        self.rows[name]["waits"] = sampling.averages()
        print(f"    sessions on average: {waits.summary(self.rows[name]['waits'])}", flush=True)

    def submission_without_flush(self, request, jobs):
        """Diagnostic: the same POSTs with synchronous_commit off, so that no COMMIT waits for its WAL flush.

        Not a way to run the service (it would answer 201 for a write a crash could still lose):
        it shows what the flush costs a POST. The feed's counter row stays locked until COMMIT
        has returned (migration 0003), so the flushes of concurrent POSTs take turns.
        """
        conn = dataset.connect(self.url)
        conn.autocommit = True
        name = psycopg2.extensions.quote_ident(self.database_name, conn)
        try:
            with conn.cursor() as cur:
                cur.execute(f"ALTER DATABASE {name} SET synchronous_commit = off")  # for connections made after
            with Service(self.url) as unflushed:
                measured, self.service = self.service, unflushed
                try:
                    self.measure("submission-noflush", request + ", synchronous_commit off (diagnostic only)",
                                 jobs, floor="healthz")
                finally:
                    self.service = measured
        finally:
            with conn.cursor() as cur:
                cur.execute(f"ALTER DATABASE {name} RESET synchronous_commit")
            conn.close()

    def batch(self):
        request = "POST /v1/submissions/batch, 10,000 items, beside COPY of the same rows"
        try:
            from . import batch_ingest
        except ImportError:
            self.unavailable("batch", request, "bench/batch_ingest.py has not landed")
            return
        if not self.available("/v1/submissions/batch", method="POST"):
            self.unavailable("batch", request, "POST /v1/submissions/batch answers 404/405")
            return
        self.batch_beside_copy(batch_ingest, request)

    def batch_beside_copy(self, batch_ingest, request):
        """bench/batch_ingest.py's batches and COPY, the batches POSTed to the served instance."""
        token = dataset.create_key(self.url, "admin", name="bench batch")
        key_id = token.split("_")[1]
        client = HttpClient(self.service)
        conn = dataset.connect(self.url)
        codes, items = self.regencies, self.args.batch_items
        with conn:  # rows_for(n) takes dates of its own from 2012 on: past those of earlier runs, if any
            # (from the latest date they used: a count of their rows misses the short warm-up batch's slot)
            latest = queries.latest_before(conn, day="2016-01-01")
        first = 1 if latest is None else (latest - batch_ingest.rows_for(0, codes, 1)[0][1]).days \
            // -(-items // len(codes)) + 2
        batch_ingest.ingest_batch(client, token, batch_ingest.rows_for(first, codes, items)[:100])  # warm up
        batch_seconds, copy_seconds, batch_cpu, copy_cpu = [], [], [], []
        try:
            for run in range(self.args.runs):
                # What each batch and each COPY cost the workers and PostgreSQL in CPU: a batch's
                # time is the two in turn (one request), so its database CPU bounds its rate.
                rows = batch_ingest.rows_for(first + 1 + 2 * run, codes, items)
                account = CpuAccount(self.service, self.database_name)
                batch_seconds.append(batch_ingest.ingest_batch(client, token, rows))
                batch_cpu.append(account.used_seconds())
                rows = batch_ingest.rows_for(first + 2 + 2 * run, codes, items)
                account = CpuAccount(self.service, self.database_name)
                copy_seconds.append(batch_ingest.ingest_copy(conn, key_id, rows))
                copy_cpu.append(account.used_seconds())
            if self.args.profile and profiling.available():
                sampling = profiling.Sampling(self.service.worker_pids(), round(statistics.median(batch_seconds)) + 1)
                rows = batch_ingest.rows_for(first + 1 + 2 * self.args.runs, codes, items)
                batch_ingest.ingest_batch(client, token, rows)
                summary = sampling.summary()
                profiling.PROFILES.mkdir(exist_ok=True)
                (profiling.PROFILES / "batch.txt").write_text(f"batch: one {items:,}-item batch\n{summary}\n")
        finally:
            conn.close()
        copy_rate = items / statistics.median(copy_seconds)
        self.rows["copy"] = {
            "scenario": "copy", "request": f"COPY of {items:,} rows into submission (the database's floor)",
            "connections": 1, "rps": copy_rate, "p50_ms": statistics.median(copy_seconds) * 1e3,
            "p99_ms": max(copy_seconds) * 1e3, "rows_per_second": copy_rate,
            "cpu_ms_per_batch": _median_cpu_ms(copy_cpu),
        }
        batch_rate = items / statistics.median(batch_seconds)
        row = {
            "scenario": "batch", "request": request.replace("10,000", f"{items:,}") + " (figures are rows/s, "
            "and the time of one batch)", "connections": 1, "rps": batch_rate,
            "p50_ms": statistics.median(batch_seconds) * 1e3, "p99_ms": max(batch_seconds) * 1e3,
            "rows_per_second": batch_rate, "floor": "copy", "ratio": batch_rate / copy_rate,
            "rss_mb": self.service.worker_rss_mb(), "target": ">= 25% of COPY and >= 20,000 rows/s",
            "cpu_ms_per_batch": _median_cpu_ms(batch_cpu),
        }
        row["met"] = row["ratio"] >= 0.25 and batch_rate >= 20_000
        row["vs"] = f"{row['ratio']:.0%} of COPY"
        self.rows["batch"] = row
        print(f"  {'copy':18} {copy_rate:10,.0f} rows/s ({statistics.median(copy_seconds):.2f} s a batch)  "
              f"{_cpu_text(self.rows['copy'])}\n"
              f"  {'batch':18} {batch_rate:10,.0f} rows/s ({statistics.median(batch_seconds):.2f} s a batch) "
              f"= {row['ratio']:.0%} of COPY  {_cpu_text(row)}  rss {max(row['rss_mb'] or [0]):.0f} MB"
              f"{'  target met' if row['met'] else '  TARGET MISSED (' + row['target'] + ')'}", flush=True)

    def mixed(self):
        reads = [f"/v1/provinces/{p}/coverage" for p in self.provinces] + ["/v1/coverage"] \
            + [f"/v1/regencies/{r}/coverage" for r in self.regencies[::7]]
        if not self.available(reads[0]) or not self.available("/v1/submissions", method="POST"):
            self.unavailable("mixed", "dashboards reading while regency systems submit",
                             "coverage or POST /v1/submissions not there yet")
            return
        dashboards = self.get("dashboard-reads", reads)
        self.measure("reads-mixed", "the same reads while 8 connections POST submissions",
                     [(dashboards, 4), (self.submissions_workload(), 8)],
                     beside=("reads-idle", "dashboard reads alone: provinces, nation, every 7th regency",
                             [(dashboards, 4)]),
                     target=Target("p99 < 3x idle p99", lambda r: r["ratio_to_idle_p99"] < 3))


class HttpClient:
    """What bench/batch_ingest.py asks of Flask's test client (post, status_code, get_json), over HTTP."""

    class Answer:
        def __init__(self, status, body):
            self.status_code, self._body = status, body

        def get_json(self):
            return json.loads(self._body)

        def get_data(self, as_text=False):
            return self._body.decode() if as_text else self._body

    def __init__(self, service):
        self._port = service.port

    def post(self, path, *, data, content_type, headers):
        conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=120)
        try:
            conn.request("POST", path, body=data, headers={**headers, "Content-Type": content_type})
            answer = conn.getresponse()
            return self.Answer(answer.status, answer.read())
        finally:
            conn.close()


def _median_cpu_ms(used):
    return {group: statistics.median(u[group] for u in used) * 1e3 for group in ("workers", "database")}


def _cpu_text(row):
    """A batch's or a COPY's CPU: 'CPU ms a batch: workers W + PostgreSQL P'."""
    cpu = row["cpu_ms_per_batch"]
    return f"CPU ms a batch: workers {cpu['workers']:.0f} + PostgreSQL {cpu['database']:.0f}"


def _spreads_text(row):
    """'  connections per worker 2-1-1, 1-1-1-1, 3-1 (healthz beside: 4, 2-2, 2-1-1)', a run's each."""
    def runs(spreads):
        return ", ".join("-".join(str(n) for n in spread if n) or "none" for spread in spreads)
    if not row.get("spreads"):
        return ""
    beside = row.get("floor_paired", {}).get("spreads")
    return f"  connections per worker {runs(row['spreads'])}" + (f" (healthz beside: {runs(beside)})" if beside else "")


def _floor_text(row):
    paired = row.get("floor_paired")
    if not paired:
        return row["floor"]
    pairs = row.get("pair_ratios")
    spread = f"; pairs {min(pairs):.0%}-{max(pairs):.0%}" if pairs and len(pairs) > 1 else ""
    return f"{row['floor']} ({paired['rps']:.0f} beside it{spread})"


def table(rows):
    lines = ["| scenario | what | conns | req/s | p50 ms | p99 ms | vs floor | CPU ms/req (vs floor) "
             "| worker RSS MB | CPU: workers / db / rest / idle | target |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: | --- | --- |"]
    for row in rows.values():
        if "unavailable" in row:
            blank = "| " * 9
            lines.append(f"| {row['scenario']} | {row['request']} {blank}| not available: {row['unavailable']} |")
            continue
        vs = f"{row['ratio']:.0%} of {_floor_text(row)}" if "ratio" in row else ""
        if "ratio_to_idle_p99" in row:
            pairs = row.get("pair_p99_ratios")
            spread = f" (pairs {min(pairs):.2f}-{max(pairs):.2f}x)" if pairs and len(pairs) > 1 else ""
            vs = f"p99 {row['ratio_to_idle_p99']:.2f}x idle{spread}"
        if "rows_per_second" in row:
            vs = row.get("vs", "")
        target = "" if "met" not in row else (("met: " if row["met"] else "MISSED: ") + row["target"])
        rss = "/".join(f"{x:.0f}" for x in row["rss_mb"]) if row.get("rss_mb") else ""
        rps = f"{row['rps']:.0f}" if "rps" in row else ""
        cpu = row.get("cpu")
        cpu = f"{cpu['workers']:.0%} / {cpu['database']:.0%} / {cpu['everything_else']:.0%} / {cpu['idle']:.0%}" \
            if cpu else ""
        cost = f"{row['cpu_ms_per_request']:.2f}" if "cpu_ms_per_request" in row else ""
        if "cpu_ms_per_batch" in row:
            cost = _cpu_text(row)
        if "alone_ratio" in row:
            cost += f" ({row['alone_ratio']:.0%})"
        if "budget_ms" in row:
            cost += f" (in all {row['budget_ms']:.2f} at the target)"
        p50, p99 = (f"{row[k]:.1f}" if k in row else "" for k in ("p50_ms", "p99_ms"))
        lines.append(f"| {row['scenario']} | {row['request']} | {row.get('connections', '')} | {rps} | "
                     f"{p50} | {p99} | {vs} | {cost} | {rss} | {cpu} | {target} |")
        for other in row.get("others", []):
            lines.append(f"| | (alongside) {other.get('name', 'submissions')} | {other['connections']} | "
                         f"{other['rps']:.0f} | {other['p50_ms']:.1f} | {other['p99_ms']:.1f} | | | | | |")
    return "\n".join(lines)


@contextlib.contextmanager
def _database(args):
    if args.reuse_database:
        with dataset.kept_database(args.reuse_database) as url:
            yield url
    else:
        with dataset.scratch_database(keep=args.keep_database) as url:
            if args.keep_database:
                name = psycopg2.extensions.parse_dsn(url)["dbname"]
                print(f"the scratch database stays: measure it again with --reuse-database {name}", flush=True)
            yield url


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a sliver of data, four scenarios, 1 s each")
    parser.add_argument("--runs", type=int, help="runs per scenario (median reported); default 3, smoke 1")
    parser.add_argument("--seconds", type=int, help="length of one run; default 5, smoke 1")
    parser.add_argument("--connections", type=int, default=4, help="connections per scenario (default 4)")
    parser.add_argument("--only", help="comma-separated scenarios to run")
    parser.add_argument("--batch-items", type=int, default=10_000, help="items per batch (default 10,000)")
    parser.add_argument("--json", dest="json_path", help="write every figure here as JSON")
    parser.add_argument("--profile", action="store_true",
                        help="after each scenario, one run under py-spy; summaries in bench/profiles/")
    parser.add_argument("--keep-database", action="store_true", help="do not drop the scratch database")
    parser.add_argument("--reuse-database", metavar="NAME",
                        help="measure again a database kept by --keep-database (no load)")
    parser.add_argument("--keep-autogroup", action="store_true",
                        help="measure with the kernel's autogroup scheduling as the machine has it (by default "
                             "the run switches it off when it can, and back on after; bench/scheduler.py)")
    args = parser.parse_args(argv)
    args.runs = args.runs or (1 if args.smoke else 3)
    args.seconds = args.seconds or (1 if args.smoke else 5)
    scenarios = args.only.split(",") if args.only else (SMOKE_SCENARIOS if args.smoke else FULL_SCENARIOS)
    scenarios = ("healthz", *[s for s in scenarios if s != "healthz"])  # the floor of the others
    plan = dataset.Plan.smoke() if args.smoke else dataset.Plan()

    started = time.perf_counter()
    about = machine()
    print(f"machine: {about['cpus']} CPUs ({about['cpu_model']}), {about['memory']} memory, "
          f"load generator {about['load_generator']}; generator, service and database share these CPUs", flush=True)
    with scheduler.autogroup_off(wanted=not (args.keep_autogroup or args.smoke)) as scheduling, \
            _database(args) as url:
        print(scheduling, flush=True)
        about["scheduling"] = scheduling
        loaded = dataset.describe(url) if args.reuse_database else dataset.load(url, plan)
        with Service(url) as service:
            bench = Bench(args, url, loaded, service)
            print(f"gunicorn on {service.base_url}: {len(service.worker_pids())} workers, "
                  f"{args.runs} run(s) of {args.seconds} s per scenario, medians:", flush=True)
            bench.run(scenarios)
    generator = max((r.get("generator_cpu_share", 0) for r in bench.rows.values()), default=0)
    largest_worker = max((mb for r in bench.rows.values() for mb in r.get("rss_mb") or []), default=0)
    result = {"machine": about, "loaded": loaded, "runs": args.runs, "seconds": args.seconds,
              "scenarios": bench.rows, "worker_restarts": service.worker_restarts, "largest_worker_mb": largest_worker,
              "generator_max_cpu_of_one_core": generator, "total_seconds": round(time.perf_counter() - started, 1)}
    print()
    print(table(bench.rows))
    print(f"\nthe load generator used at most {generator:.0%} of one core in any scenario; gunicorn restarted a "
          f"worker {service.worker_restarts} times (max_requests) during the run")
    print(f"the largest worker held {largest_worker:.0f} MB at the end of a scenario: target < 120 MB "
          f"{'met' if largest_worker < 120 else 'MISSED'}")
    print(f"\nwhole run: {result['total_seconds']} s")
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(result, f, indent=2, default=str)
    missed = [r["scenario"] for r in bench.rows.values() if r.get("met") is False]
    if missed:
        print(f"targets missed: {', '.join(missed)} (see bench/RESULTS.md for why)")
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
