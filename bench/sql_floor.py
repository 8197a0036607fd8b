"""The database's floor for an answer: the SQL the service sends for it, replayed by pgbench alone.

The statements are those the app itself sends, recorded by a cursor (as bench/explain.py records
plans; no SQL is copied here): for each province, the province answer's statement, which carries
the key check; for each regency system, the two query strings of a POST (the key check, BEGIN,
the regency lock and the standing; the writes and COMMIT). pgbench replays them, as many clients as
the HTTP scenario has connections, in the simple query protocol psycopg2 speaks, each POST with a
new count and the id the sequence gives it; each pgbench client prepares the statements the
service prepares (db.Prepared) once, as each of the service's connections does. What pgbench
reaches and what PostgreSQL's backends spend per transaction is what the database needs for
these answers with no Python in the way.
"""
import glob
import itertools
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from service.coverage.queries import SNAPSHOT_NOW
from service.db import DictRowCursor

from .explain import client_with_cursor


class RecordingCursor(DictRowCursor):
    """Keeps the text of every query string sent, as the server receives it; PREPAREs apart."""

    sent = []
    prepared = {}  # statement name -> its PREPARE, sent once per connection (db.Prepared)

    def execute(self, query, vars=None):
        result = super().execute(query, vars)
        text = self.query.decode()
        if text.startswith("PREPARE "):
            RecordingCursor.prepared[text.split()[1]] = text
        else:
            RecordingCursor.sent.append(text)
        return result


def _prepared_once():
    """A script's opening: each pgbench client prepares the statements once, as a service connection does."""
    prepares = "".join(_compound(statement) for statement in RecordingCursor.prepared.values())
    return f"\\if :prepared = 0\n{prepares}\\set prepared 1\n\\endif\n" if prepares else ""


def pgbench():
    found = shutil.which("pgbench") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))), None)
    if found:
        return found
    try:
        import pgserver
    except ImportError:
        return None
    bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
    return str(bundled) if bundled.exists() else None


def _recorded(url, calls):
    """[(the query strings one call sent, its answer)] for each call(client) in calls."""
    out = []
    RecordingCursor.prepared = {}
    with client_with_cursor(url, RecordingCursor, log_level="WARNING") as client:
        for call in calls:
            call(client)  # warm: connections opened
            RecordingCursor.sent = []
            answer = call(client)
            out.append((RecordingCursor.sent, answer))
            RecordingCursor.sent = []
    return out


def _compound(sql):
    """One pgbench command holding several statements (\\;), as the service sends them in one string."""
    return sql.strip().rstrip(";").replace(";\n", "\\;\n") + ";\n"


# The last value of a province statement: the snapshot of the answer the app kept (coverage/kept.py).
_KEPT_SNAPSHOT = re.compile(r"(EXECUTE province_as_of_\w+\(.*, )'[^']*'\)\s*\Z", re.S)


def province_statements(url, reader_token, provinces):
    """{province: the query strings its answer sends}: one, the answer's statement carrying the key check.

    Recorded the second time, so the statement carries the snapshot of the answer the app kept the
    first time. A replay sends in its place the snapshot the server has when it runs (as the
    statement writes it), as the service's own next request would after any commit: so a replay
    is the answer of a province that has not changed, whatever commits on the server meanwhile.
    """
    headers = {"Authorization": f"Bearer {reader_token}"}
    calls = [lambda client, p=p: client.get(f"/v1/provinces/{p}/coverage", headers=headers) for p in provinces]
    out = {}
    for province, (sent, answer) in zip(provinces, _recorded(url, calls), strict=True):
        assert answer.status_code == 200 and len(sent) == 1, (answer.status_code, [s[:80] for s in sent])
        replayed, found = _KEPT_SNAPSHOT.subn(rf"\1({SNAPSHOT_NOW}))", sent[0])
        assert found == 1, sent[0][-200:]
        out[province] = [replayed]
    return out


def province_scripts(url, reader_token, provinces):
    statements = province_statements(url, reader_token, provinces)
    return [_prepared_once() + "".join(_compound(statement) for statement in sent) for sent in statements.values()]


_COUNT = 987_654_321  # recorded by the capturing POSTs; pgbench sends a random count in its place


def submission_statements(url, submitters, as_of):
    """{regency: (key check + BEGIN + lock + standing, the writes + COMMIT)} of a POST creating a submission.

    The writes hold `:count` where the recorded count was and `:new_id` where the id the standing
    statement gave (its column new_id) was: each replay sends a new count and the id it was given.
    """
    # Each regency's warm-up POST, then the recorded one: a new count each, so both create.
    counts = {code: itertools.count(_COUNT - 1) for code, _ in submitters}

    def post(client, code, headers):
        return client.post("/v1/submissions", json={"regency_code": code, "as_of": str(as_of),
                                                     "recorded": next(counts[code])}, headers=headers)

    calls = []
    for code, token in submitters:
        headers = {"Authorization": f"Bearer {token}"}
        calls.append(lambda client, code=code, headers=headers: post(client, code, headers))
    out = {}
    for (code, _), (sent, answer) in zip(submitters, _recorded(url, calls), strict=True):
        assert answer.status_code == 201 and len(sent) == 2, (answer.status_code, len(sent))
        standing, writes = sent
        new_id = answer.get_json()["id"]
        insert, rest = writes.split("\n;\n", 1)
        insert = re.sub(rf"\b{_COUNT}\b", ":count", insert)
        out[code] = (standing, re.sub(rf"\b{new_id}\b", ":new_id", insert + "\n;\n" + rest))
    return out


def submission_scripts(url, submitters, as_of):
    scripts = []
    for standing, writes in submission_statements(url, submitters, as_of).values():
        # The writes use the id the standing statement took: pgbench keeps its columns (\gset: the
        # last statement's), so the statement runs unchanged (wrapped in a SELECT, the planner would
        # drop the unused probes).
        first = _compound(standing).rstrip().rstrip(";")
        scripts.append(f"\\set count random(100000, 999999)\n{first}\n\\gset\n{_compound(writes)}")
    return [_prepared_once() + script for script in scripts]


def replay(url, database_name, scripts, *, clients, seconds):
    """pgbench with the scripts (picked at random) for `seconds`.

    Returns (transactions per second, PostgreSQL CPU ms per transaction).
    """
    with tempfile.TemporaryDirectory(prefix="ktpel-bench-sql-") as folder:
        files = []
        for number, text in enumerate(scripts):
            path = os.path.join(folder, f"{number}.sql")
            Path(path).write_text(text)
            files += ["-f", path]
        process = subprocess.Popen(
            [pgbench(), "--no-vacuum", "--client", str(clients), "--jobs", "1", "--time", str(seconds + 2),
             "--protocol", "simple", "--define", "prepared=0", *files, url],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(1)  # connections made, then measured for `seconds`
        before, started = _database_cpu(database_name), time.monotonic()
        time.sleep(seconds)
        used, elapsed = _database_cpu(database_name) - before, time.monotonic() - started
        output = process.communicate()[0]
    found = re.search(r"^tps = ([0-9.]+)", output, re.MULTILINE)
    failed = re.search(r"number of failed transactions: ([0-9]+)", output)
    if process.returncode != 0 or not found or (failed and int(failed.group(1))):
        raise RuntimeError(f"pgbench failed:\n{output[-2000:]}")
    tps = float(found.group(1))
    return tps, used / elapsed / tps * 1000


def _database_cpu(database_name):
    total = 0.0
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if cmdline.startswith("postgres:") and f" {database_name} " in cmdline:
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
    return total
