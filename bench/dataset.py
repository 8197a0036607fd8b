"""The national dataset in a scratch database: registry through the real import code, counts by SQL."""
import csv
import datetime as dt
import decimal
import io
import os
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from service import embedded, migrate
from service.auth import new_token
from service.clock import today
from service.keys import queries as keys
from service.regions.imports import import_populations, import_regions, parse_populations, parse_regions
from service.targets import queries as targets

from . import queries

PROJECT = Path(__file__).resolve().parent.parent
WILAYAH = PROJECT.parent / "shared" / "data" / "wilayah"

# Wajib KTP (17 or over, or married) as a share of the whole population: about 72% in the
# 2024 Dukcapil figures; an earlier, lower share shows the effective dating.
ELIGIBLE_SHARES = ((dt.date(2011, 1, 1), decimal.Decimal("0.68")), (dt.date(2024, 1, 1), decimal.Decimal("0.72")))
NATIONAL_TARGETS = ((dt.date(2011, 1, 1), decimal.Decimal("90.00")), (dt.date(2022, 1, 1), decimal.Decimal("95.00")))


@dataclass(frozen=True)
class Plan:
    """How much to load: all of Indonesia for ten years, or a sliver for the smoke run."""
    days: int = 3652
    province_codes: tuple | None = None  # None: all 38
    mistyped_one_in: int = 250  # days first reported wrong, then corrected by a second row
    retracted_one_in: int = 1000  # days with an extra wrong row that was retracted

    @classmethod
    def smoke(cls):
        return cls(days=30, province_codes=("62",), mistyped_one_in=20, retracted_one_in=40)


@contextmanager
def bench_server():
    """The URL of BENCH_DATABASE_URL's server, or of the embedded one (in .pgdata-bench) while it runs."""
    server_url = os.environ.get("BENCH_DATABASE_URL")
    if server_url:
        yield server_url
        return
    server, server_url = embedded.start(PROJECT / ".pgdata-bench")
    try:
        yield server_url
    finally:
        del server


@contextmanager
def kept_database(name):
    """A database that an earlier run kept (--keep-database), on the same server."""
    with bench_server() as server_url:
        yield psycopg2.extensions.make_dsn(server_url, dbname=name)


@contextmanager
def scratch_database(keep=False):
    """A fresh database on BENCH_DATABASE_URL's server or the embedded one; dropped at the end."""
    with bench_server() as server_url, _created_database(server_url, keep) as url:
        yield url


@contextmanager
def _created_database(server_url, keep):
    name = f"ktpel_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield psycopg2.extensions.make_dsn(server_url, dbname=name)
    finally:
        if not keep:
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


def connect(url):
    return psycopg2.connect(url, cursor_factory=psycopg2.extras.RealDictCursor)


def _population_csv(province_codes):
    """Eligible populations derived from the 2024 totals of population.csv, as the import reads them."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["regency_code", "effective_from", "count", "source"])
    with open(WILAYAH / "population.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            code = row["code"]
            if len(code) != 5 or (province_codes and code[:2] not in province_codes):
                continue
            for effective_from, share in ELIGIBLE_SHARES:
                count = int((int(row["total"]) * share).to_integral_value(decimal.ROUND_HALF_UP))
                writer.writerow([code, effective_from.isoformat(), count,
                                 f"bench: {share:.0%} of the Dukcapil 2024 total"])
    return out.getvalue()


def _registry(conn, plan):
    provinces_text = (WILAYAH / "provinces.csv").read_text(encoding="utf-8")
    regencies_text = (WILAYAH / "regencies.csv").read_text(encoding="utf-8")
    provinces, regencies = parse_regions(provinces_text, regencies_text)
    if plan.province_codes:
        provinces = {c: n for c, n in provinces.items() if c in plan.province_codes}
        regencies = {c: r for c, r in regencies.items() if r["province_code"] in plan.province_codes}
    import_regions(conn, provinces, regencies)
    import_populations(conn, parse_populations(_population_csv(plan.province_codes)))
    for effective_from, percent in NATIONAL_TARGETS:
        targets.put_target(conn, effective_from=effective_from, target_percent=percent, note="bench")
    return len(provinces), len(regencies)


def load(url, plan, log=print):
    """Migrate and load the dataset; returns what was loaded and how long it took."""
    started = time.perf_counter()
    conn = connect(url)
    try:
        migrate.migrate(conn, log=lambda line: None)
        conn.autocommit = False
        last_day = today()
        first_day = last_day - dt.timedelta(days=plan.days - 1)
        with conn:
            n_provinces, n_regencies = _registry(conn, plan)
        registry_seconds = time.perf_counter() - started
        with conn:
            codes = queries.regency_codes(conn, province_codes=list(plan.province_codes or []) or None)
            rows = queries.load_daily_counts(conn, regency_codes=codes, first_day=first_day, last_day=last_day,
                                             mistyped_one_in=plan.mistyped_one_in,
                                             retracted_one_in=plan.retracted_one_in)
            rows["feed_changes"] = queries.fill_change_feed(conn)
        counts_seconds = time.perf_counter() - started - registry_seconds
        conn.autocommit = True
        queries.vacuum_analyze(conn)
        # Nothing of the load left to write while the scenarios run: after it, this VM held about
        # 470 MB of dirty pages, which the kernel wrote out 30 s later, in the first scenario.
        checkpointed = queries.checkpoint(conn)
        os.sync()
        size = queries.table_sizes(conn)
    finally:
        conn.close()
    loaded = {
        "provinces": n_provinces, "regencies": n_regencies, "first_day": first_day.isoformat(),
        "last_day": last_day.isoformat(), **rows, "submissions": size["submissions"],
        "on_disk": size["on_disk"], "registry_seconds": round(registry_seconds, 1),
        "counts_seconds": round(counts_seconds, 1), "seconds": round(time.perf_counter() - started, 1),
    }
    log(f"loaded {n_provinces} provinces, {n_regencies} regencies, {size['submissions']:,} submissions "
        f"({rows['corrections']:,} corrections, {rows['retracted']:,} retracted; {size['on_disk']}) "
        f"from {first_day} to {last_day} in {loaded['seconds']} s "
        f"(registry {loaded['registry_seconds']} s, counts {loaded['counts_seconds']} s, then VACUUM ANALYZE, "
        f"{'CHECKPOINT' if checkpointed else 'no CHECKPOINT (the role may not)'} and sync)")
    return loaded


def describe(url):
    """The dataset an earlier run loaded (kept with --keep-database), to measure it again without loading.

    Migrated first: the code measured may have migrations the run that loaded it did not.
    """
    conn = connect(url)
    try:
        migrate.migrate(conn, log=lambda line: None)
        with conn:
            span = queries.loaded_span(conn)
    finally:
        conn.close()
    return {**span, "first_day": span["first_day"].isoformat(), "last_day": span["last_day"].isoformat(),
            "seconds": 0, "reused": True}


def create_key(url, role, scopes=(), name=None):
    """An API key as `keys create` makes it; returns the bearer token."""
    key_id, token, token_hash = new_token()
    conn = connect(url)
    try:
        with conn:
            keys.create_key(conn, key_id=key_id, name=name or f"bench {role}", role=role, scopes=scopes,
                            token_hash=token_hash)
    finally:
        conn.close()
    return token
