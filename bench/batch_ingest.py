"""Batch ingest: 10,000-item POST /v1/submissions/batch against a plain COPY of the same rows.

    .venv/bin/python -m bench.batch_ingest [--runs 5] [--items 10000]

Uses DATABASE_URL's server, or the embedded PostgreSQL (bench/out/pgdata, ignored by git) when it
is unset, and works in a database of its own that it creates, migrates, loads with the 514 regencies of
../shared/data/wilayah and eligible populations (70% of the 2024 population), and drops at the end.

The batch goes through the whole app in-process (Flask's WSGI test client: routing, auth, JSON
parsing, validation, warnings, the insert, the audit event and the change feed), without a socket.
The baseline is COPY of the same rows (regency, date, count, reference, note, warnings, key) into
the same table, in the same run. Each run uses dates of its own, so every item is new. Prints the
median rows/s of each and the ratio.
"""
import argparse
import csv
import datetime as dt
import io
import json
import os
import secrets
import statistics
import time
from pathlib import Path

import psycopg2
import psycopg2.extensions
import psycopg2.extras

PROJECT = Path(__file__).resolve().parent.parent
WILAYAH = PROJECT.parent / "shared" / "data" / "wilayah"


def server_url():
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"], None
    from service import embedded

    server, url = embedded.start(PROJECT / "bench" / "out" / "pgdata")
    return url, server


def create_database(url):
    name = f"ktpel_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = psycopg2.connect(url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    return admin, name, psycopg2.extensions.make_dsn(url, dbname=name)


def prepare(database_url):
    from service import migrate
    from service.auth import new_token
    from service.keys import queries as keys
    from service.regions.imports import import_populations, import_regions, parse_populations, parse_regions

    conn = psycopg2.connect(database_url, cursor_factory=psycopg2.extras.RealDictCursor)
    migrate.migrate(conn, log=lambda line: None)
    provinces, regencies = parse_regions((WILAYAH / "provinces.csv").read_text(encoding="utf-8-sig"),
                                         (WILAYAH / "regencies.csv").read_text(encoding="utf-8-sig"))
    key_id, token, token_hash = new_token()
    with conn:
        import_regions(conn, provinces, regencies)
        import_populations(conn, parse_populations(eligible_population_csv()))
        keys.create_key(conn, key_id=key_id, name="bench", role="admin", scopes=(), token_hash=token_hash)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT code FROM regency ORDER BY code")
        codes = [r["code"] for r in cur.fetchall()]
    return conn, codes, key_id, token


def eligible_population_csv():
    """2011 eligible populations, taken as 70 percent of each regency's 2024 population (illustrative)."""
    lines = ["regency_code,effective_from,count,source"]
    for row in csv.DictReader(io.StringIO((WILAYAH / "population.csv").read_text(encoding="utf-8-sig"))):
        if len(row["code"]) == 5:
            lines.append(f"{row['code']},2011-01-01,{int(row['total']) * 7 // 10},bench")
    return "\n".join(lines) + "\n"


def rows_for(run, codes, count):
    """`count` (regency, date, recorded) rows on dates no other run uses."""
    days_needed = -(-count // len(codes))
    first = dt.date(2012, 1, 1) + dt.timedelta(days=run * days_needed)
    rows = []
    for d in range(days_needed):
        day = first + dt.timedelta(days=d)
        rows += [(code, day, 1000 + d * 10 + n % 7) for n, code in enumerate(codes)]
    return rows[:count]


def ingest_batch(client, token, rows):
    body = json.dumps({"items": [
        {"regency_code": code, "as_of": day.isoformat(), "recorded": recorded, "reference": f"bench-{i}"}
        for i, (code, day, recorded) in enumerate(rows)
    ]}).encode()
    started = time.perf_counter()
    response = client.post("/v1/submissions/batch", data=body, content_type="application/json",
                           headers={"Authorization": f"Bearer {token}"})
    elapsed = time.perf_counter() - started
    assert response.status_code == 201, response.get_data(as_text=True)[:500]
    assert response.get_json()["summary"]["created"] == len(rows)
    return elapsed


def ingest_copy(conn, key_id, rows):
    buffer = io.StringIO()
    for i, (code, day, recorded) in enumerate(rows):
        buffer.write(f"{code}\t{day.isoformat()}\t{recorded}\tbench-{i}\t\\N\t[]\t{key_id}\n")
    buffer.seek(0)
    started = time.perf_counter()
    with conn, conn.cursor() as cur:
        cur.copy_expert(
            "COPY submission (regency_code, as_of, recorded, reference, note, warnings, submitted_by_key_id) "
            "FROM STDIN", buffer)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--items", type=int, default=10_000)
    args = parser.parse_args()

    from service import create_app
    from service.config import Settings

    url, server = server_url()
    admin, name, database_url = create_database(url)
    try:
        conn, codes, key_id, token = prepare(database_url)
        app = create_app(Settings(database_url=database_url, log_level="WARNING"))
        client = app.test_client()
        ingest_batch(client, token, rows_for(0, codes, 100))  # warm up: pools, imports
        batch_rates, copy_rates = [], []
        for run in range(args.runs):
            rows = rows_for(1 + 2 * run, codes, args.items)
            batch_rates.append(len(rows) / ingest_batch(client, token, rows))
            rows = rows_for(2 + 2 * run, codes, args.items)
            copy_rates.append(len(rows) / ingest_copy(conn, key_id, rows))
            print(f"run {run + 1}: batch {batch_rates[-1]:10,.0f} rows/s   COPY {copy_rates[-1]:10,.0f} rows/s",
                  flush=True)
        batch, copy = statistics.median(batch_rates), statistics.median(copy_rates)
        print(f"median over {args.runs} runs of {args.items:,} rows:")
        print(f"  POST /v1/submissions/batch (Flask app in-process): {batch:10,.0f} rows/s")
        print(f"  COPY into submission (baseline):                    {copy:10,.0f} rows/s")
        print(f"  ratio batch / COPY: {batch / copy:.2f}")
        # Each batch run is timed next to a COPY run, so a busy machine slows both of a pair alike.
        paired = statistics.median(b / c for b, c in zip(batch_rates, copy_rates, strict=True))
        print(f"  median of the per-run ratios: {paired:.2f}")
        conn.close()
        for pool in app.extensions["ktpel_pools"].values():
            pool.closeall()
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()
        del server


if __name__ == "__main__":
    main()
