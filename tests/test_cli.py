"""The ktpel-coverage command line: keys, imports and the demo seed, on the per-run test database."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main

from .conftest import PROJECT, SHARED_DATA, count_rows
from .scratch import scratch_database

CLI = Path(sys.executable).with_name("ktpel-coverage")
WILAYAH = SHARED_DATA / "wilayah"
KALTENG = json.loads((SHARED_DATA / "kalteng-2016.json").read_text())


@pytest.fixture
def run(db, database_url):
    """Run a command in-process as the console script would, with DATABASE_URL set to the test database."""

    def invoke(*args, url=None):
        return CliRunner().invoke(main, list(args), env={"DATABASE_URL": url or database_url})

    return invoke


def registry_counts(db):
    return {t: count_rows(db, t) for t in ("province", "regency", "eligible_population", "audit_event")}


def write_csv(path, header, rows):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def import_wilayah(run):
    return run("regions", "import", "--provinces", str(WILAYAH / "provinces.csv"),
               "--regencies", str(WILAYAH / "regencies.csv"))


# ---- keys ----

def test_keys_create_prints_the_token_alone_on_stdout_and_it_works(db, database_url, client):
    env = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run([str(CLI), "keys", "create", "--name", "Dashboard Kalteng", "--role", "reader"],
                            env=env, cwd=PROJECT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    token = lines[0]
    assert token.startswith("ktpel_") and " " not in token
    assert client.get("/v1/provinces", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.put("/v1/provinces/62", json={"name": "x"},
                      headers={"Authorization": f"Bearer {token}"}).status_code == 403


def test_keys_list_never_shows_tokens_and_revoke_stops_a_token_at_once(run, db, client):
    token = run("keys", "create", "--name", "Disdukcapil Lamandau", "--role", "submitter",
                "--scope", "62.09", "--scope", "63").stdout.strip()
    key_id = token.split("_")[1]
    listed = run("keys", "list")
    assert listed.exit_code == 0
    assert key_id in listed.stdout and "Disdukcapil Lamandau" in listed.stdout and "62.09,63" in listed.stdout
    assert token.split("_", 2)[2] not in listed.output
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/provinces", headers=headers).status_code == 200

    revoked = run("keys", "revoke", key_id)
    assert revoked.exit_code == 0
    assert client.get("/v1/provinces", headers=headers).status_code == 401
    assert "revoked" in run("keys", "list").stdout


def test_keys_revoke_of_an_unknown_key_fails(run, db):
    result = run("keys", "revoke", "doesnotexist")
    assert result.exit_code != 0
    assert "no key doesnotexist" in result.output


def test_key_creation_and_revocation_are_audited_without_the_token(run, db):
    token = run("keys", "create", "--name", "ops", "--role", "admin").stdout.strip()
    run("keys", "revoke", token.split("_")[1])
    with db, db.cursor() as cur:
        cur.execute("SELECT action, actor_name, after::text AS after FROM audit_event ORDER BY id")
        events = cur.fetchall()
    assert [e["action"] for e in events] == ["api_key.create", "api_key.revoke"]
    assert all(e["actor_name"] == "command line" for e in events)
    assert all(token.split("_", 2)[2] not in e["after"] for e in events)


@pytest.mark.parametrize("args", [
    ("--role", "reader", "--name", ""),
    ("--role", "reader", "--name", "   "),
    ("--role", "reader", "--name", "x" * 201),
    ("--role", "submitter"),  # a submitter needs a scope
    ("--role", "submitter", "--scope", "6"),
    ("--role", "submitter", "--scope", "62.9"),
    ("--role", "submitter", "--scope", "62.09\n"),
    ("--role", "submitter", "--scope", "62", "--scope", "Kalteng"),
    ("--role", "reader", "--scope", "62"),  # only a submitter has a scope
    ("--role", "superuser"),
])
def test_keys_create_with_a_bad_role_or_scope_is_refused_and_stores_nothing(run, db, args):
    result = run("keys", "create", "--name", "bad", *args)
    assert result.exit_code == 2  # a usage error, not a crash
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    assert count_rows(db, "api_key") == 0
    assert count_rows(db, "audit_event") == 0


# ---- regions import ----

def test_regions_import_creates_38_provinces_and_514_regencies_then_finds_them_unchanged(run, db):
    provinces = list(csv.DictReader((WILAYAH / "provinces.csv").open()))
    regencies = list(csv.DictReader((WILAYAH / "regencies.csv").open()))
    assert (len(provinces), len(regencies)) == (38, 514)
    first = import_wilayah(run)
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == f"{38 + 514} created, 0 updated, 0 unchanged"
    assert count_rows(db, "province") == 38 and count_rows(db, "regency") == 514
    second = import_wilayah(run)
    assert second.stdout.strip() == f"0 created, 0 updated, {38 + 514} unchanged"
    with db, db.cursor() as cur:
        cur.execute("SELECT name, kind, province_code FROM regency WHERE code = '62.09'")
        assert cur.fetchone() == {"name": "Lamandau", "kind": "kabupaten", "province_code": "62"}


def test_regions_import_updates_a_renamed_regency(run, db, tmp_path):
    provinces = write_csv(tmp_path / "p.csv", ["code", "name"], [["62", "Kalimantan Tengah"]])
    regencies = tmp_path / "r.csv"
    write_csv(regencies, ["code", "name", "kind", "province_code"], [["62.71", "Palangka Raya", "kota", "62"]])
    run("regions", "import", "--provinces", provinces, "--regencies", str(regencies))
    write_csv(regencies, ["code", "name", "kind", "province_code"], [["62.71", "Palangkaraya", "kota", "62"]])
    result = run("regions", "import", "--provinces", provinces, "--regencies", str(regencies))
    assert result.stdout.strip() == "0 created, 1 updated, 1 unchanged"


def test_regions_import_of_a_bad_file_names_each_bad_line_and_stores_nothing(run, db, tmp_path):
    provinces = write_csv(tmp_path / "provinces.csv", ["code", "name"], [
        ["62", "Kalimantan Tengah"],   # line 2, good
        ["6", "Short"],                # line 3
        ["62", "Twice"],               # line 4
        ["63", ""],                    # line 5
    ])
    regencies = write_csv(tmp_path / "regencies.csv", ["code", "name", "kind", "province_code"], [
        ["62.09", "Lamandau", "kabupaten", "62"],   # line 2, good
        ["63.01", "Elsewhere", "kota", "62"],       # line 3: not in its province
        ["62.10", "Gunung Mas", "desa", "62"],      # line 4: kind
        ["6210", "Gunung Mas", "kabupaten", "62"],  # line 5: code
        ["71.01", "Bolaang", "kabupaten", "71"],    # line 6: unknown province
    ])
    result = run("regions", "import", "--provinces", provinces, "--regencies", regencies)
    assert result.exit_code != 0
    problems = result.stderr
    for where in ("provinces.csv: line 3", "provinces.csv: line 4", "provinces.csv: line 5",
                  "regencies.csv: line 3", "regencies.csv: line 4", "regencies.csv: line 5", "regencies.csv: line 6"):
        assert where in problems, where
    assert "line 2" not in problems
    assert "nothing was stored" in problems
    assert registry_counts(db) == {"province": 0, "regency": 0, "eligible_population": 0, "audit_event": 0}


def test_regions_import_with_a_missing_column_names_it(run, db, tmp_path):
    provinces = write_csv(tmp_path / "p.csv", ["code", "name"], [["62", "Kalimantan Tengah"]])
    regencies = write_csv(tmp_path / "r.csv", ["code", "name", "province_code"], [["62.09", "Lamandau", "62"]])
    result = run("regions", "import", "--provinces", provinces, "--regencies", regencies)
    assert result.exit_code != 0
    assert "line 1: the header lacks kind" in result.stderr
    assert count_rows(db, "province") == 0


# ---- population import ----

def test_population_import_creates_then_finds_unchanged(run, db, tmp_path):
    import_wilayah(run)
    rows = [["62.09", "2016-01-01", "67870", "Disdukcapil"], ["62.71", "2016-01-01", "187204", ""]]
    path = write_csv(tmp_path / "population.csv", ["regency_code", "effective_from", "count", "source"], rows)
    first = run("population", "import", path)
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == "2 created, 0 updated, 0 unchanged"
    assert run("population", "import", path).stdout.strip() == "0 created, 0 updated, 2 unchanged"
    with db, db.cursor() as cur:
        cur.execute("SELECT regency_code, count, source FROM eligible_population ORDER BY regency_code")
        assert cur.fetchall() == [{"regency_code": "62.09", "count": 67870, "source": "Disdukcapil"},
                                  {"regency_code": "62.71", "count": 187204, "source": None}]


def test_population_import_of_a_bad_file_names_each_bad_line_and_stores_nothing(run, db, tmp_path):
    import_wilayah(run)
    before = registry_counts(db)
    path = write_csv(tmp_path / "population.csv", ["regency_code", "effective_from", "count", "source"], [
        ["62.09", "2016-01-01", "67870", ""],   # line 2, good
        ["62.09", "2016-02-30", "1", ""],       # line 3: date
        ["62.71", "2016-01-01", "0", ""],       # line 4: count
        ["62.71", "2016-01-01", "1.5", ""],     # line 5: count
        ["6271", "2016-01-01", "5", ""],        # line 6: code
        ["62.09", "2016-01-01", "5", ""],       # line 7: twice
        ["62.72", "2016-01-01", "²", ""],       # line 8: not an ASCII number
    ])
    result = run("population", "import", path)
    assert result.exit_code != 0
    for line in range(3, 9):
        assert f"population.csv: line {line}:" in result.stderr, line
    assert "line 2:" not in result.stderr
    assert registry_counts(db) == before


def test_population_import_for_an_unknown_regency_names_the_line_and_stores_nothing(run, db, tmp_path):
    import_wilayah(run)
    before = registry_counts(db)
    path = write_csv(tmp_path / "population.csv", ["regency_code", "effective_from", "count", "source"], [
        ["62.09", "2016-01-01", "67870", ""],
        ["62.99", "2016-01-01", "5", ""],
    ])
    result = run("population", "import", path)
    assert result.exit_code != 0
    assert "population.csv: line 3: there is no regency 62.99" in result.stderr
    assert registry_counts(db) == before


# ---- seed ----

def test_seed_kalteng_2016_twice_is_idempotent_and_lists_the_14_regencies(run, db, client, reader):
    first = run("seed", "kalteng-2016")
    assert first.exit_code == 0, first.output
    counts = {t: count_rows(db, t) for t in ("province", "regency", "eligible_population", "national_target",
                                             "submission")}
    second = run("seed", "kalteng-2016")
    assert second.exit_code == 0
    created, updated, _ = (int(part.split()[0]) for part in second.stdout.strip().split(", "))
    assert (created, updated) == (0, 0)
    assert {t: count_rows(db, t) for t in counts} == counts

    listed = client.get("/v1/regencies?province=62", headers=reader).json
    expected = [(r["code"], r["name"], r["kind"]) for r in KALTENG["regencies"]]
    assert len(expected) == 14
    assert [(r["code"], r["name"], r["kind"]) for r in listed["items"]] == sorted(expected)
    by_code = {r["code"]: r for r in listed["items"]}
    assert by_code["62.09"]["name"] == "Lamandau"
    assert by_code["62.71"]["name"] == "Palangkaraya" and by_code["62.71"]["kind"] == "kota"
    for regency in KALTENG["regencies"]:
        assert by_code[regency["code"]]["eligible_population"]["count"] == regency["eligible_population"]
    assert sum(r["eligible_population"]["count"] for r in listed["items"]) \
        == KALTENG["expected_totals"]["eligible_population"]
    target = client.get("/v1/national-targets", headers=reader).json["items"]
    assert [(t["effective_from"], t["target_percent"]) for t in target] == [
        (KALTENG["national_target"]["effective_from"], KALTENG["national_target"]["target_percent"])]


def test_commands_refuse_an_unmigrated_database(run, server_url):
    with scratch_database(server_url) as url:
        for args in (("keys", "list"), ("seed", "kalteng-2016")):
            result = run(*args, url=url)
            assert result.exit_code != 0
            assert "not migrated; run 'ktpel-coverage migrate' first" in result.output


def test_an_import_file_that_is_not_utf8_is_named_and_nothing_is_stored(run, db, tmp_path):
    provinces = tmp_path / "provinces.csv"
    provinces.write_bytes(b"code,name\n62,Kalimantan Tengah\n" + b"63,Kalimantan \xff\n")
    regencies = write_csv(tmp_path / "regencies.csv", ["code", "name", "kind", "province_code"], [])
    result = run("regions", "import", "--provinces", str(provinces), "--regencies", regencies)
    assert result.exit_code == 1
    assert not isinstance(result.exception, UnicodeDecodeError)
    assert "provinces.csv: not UTF-8 text" in result.stderr
    assert count_rows(db, "province") == 0


def test_an_unreachable_database_is_a_one_line_error_not_a_traceback(db, server_url):
    import psycopg2.extensions

    url = psycopg2.extensions.make_dsn(server_url, dbname="ktpel_no_such_database")
    env = {**os.environ, "DATABASE_URL": url}
    result = subprocess.run([str(CLI), "keys", "list"], env=env, cwd=PROJECT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "cannot connect to the database" in result.stderr
    assert "ktpel_no_such_database" in result.stderr  # the operator learns why


def test_regions_import_reads_a_spreadsheet_export_with_a_bom_and_crlf(run, db, tmp_path):
    provinces = tmp_path / "provinces.csv"
    provinces.write_bytes("\ufeffcode,name\r\n62,Kalimantan Tengah\r\n".encode())
    regencies = tmp_path / "regencies.csv"
    regencies.write_bytes("\ufeffcode,name,kind,province_code\r\n62.71,Palangkaraya,kota,62\r\n".encode())
    result = run("regions", "import", "--provinces", str(provinces), "--regencies", str(regencies))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "2 created, 0 updated, 0 unchanged"
    with db, db.cursor() as cur:
        cur.execute("SELECT code, name FROM regency")
        assert cur.fetchall() == [{"code": "62.71", "name": "Palangkaraya"}]
