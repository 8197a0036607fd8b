"""The Kalimantan Tengah June 2016 report, as the service must compute it from the seeded counts."""
import decimal
import json

from click.testing import CliRunner

from service.cli import main

from .conftest import SHARED_DATA


def reference():
    return json.loads((SHARED_DATA / "kalteng-2016.json").read_text(), parse_float=decimal.Decimal)


def seed(database_url):
    result = CliRunner().invoke(main, ["seed", "kalteng-2016"], env={"DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output


def test_province_coverage_matches_the_kalteng_2016_report(client, reader, database_url):
    seed(database_url)
    expected = reference()

    response = client.get("/v1/provinces/62/coverage?as_of=2016-06-30", headers=reader)

    assert response.status_code == 200
    answer = response.get_json()
    rows = {row["code"]: row for row in answer["regencies"]}
    assert sorted(rows) == sorted(r["code"] for r in expected["regencies"])
    for regency in expected["regencies"]:
        row = rows[regency["code"]]
        assert (row["eligible_population"], row["recorded"]) == (regency["eligible_population"], regency["recorded"])
        assert row["coverage_percent"] == regency["expected"]["coverage_percent"], regency["code"]
        assert row["achievement_percent"] == regency["expected"]["achievement_percent"], regency["code"]
        assert row["band"] == regency["expected"]["band"], regency["code"]
    totals = expected["expected_totals"]
    assert answer["totals"]["eligible_population"] == totals["eligible_population"]
    assert answer["totals"]["recorded"] == totals["recorded"]
    assert answer["totals"]["coverage_percent"] == totals["coverage_percent"]
    assert answer["totals"]["regencies_total"] == answer["totals"]["regencies_reporting"] == 14
    assert answer["target_percent"] == expected["national_target"]["target_percent"]


def test_only_kotawaringin_barat_and_lamandau_have_met_the_target(client, reader, database_url):
    seed(database_url)

    answer = client.get("/v1/provinces/62/coverage?as_of=2016-06-30", headers=reader).get_json()

    assert {row["name"] for row in answer["regencies"] if row["band"] == "met"} == {"Kotawaringin Barat", "Lamandau"}
    palangka_raya = next(row for row in answer["regencies"] if row["code"] == "62.71")
    assert palangka_raya["coverage_percent"] == decimal.Decimal("44.72")


def test_nation_adds_up_the_kalteng_counts(client, reader, database_url):
    seed(database_url)

    answer = client.get("/v1/coverage?as_of=2016-06-30", headers=reader).get_json()

    assert [p["code"] for p in answer["provinces"]] == ["62"]
    assert answer["totals"]["recorded"] == 1311326
    assert answer["totals"]["eligible_population"] == 1678249
    assert answer["totals"]["coverage_percent"] == decimal.Decimal("78.14")
    assert answer["provinces"][0]["coverage_percent"] == decimal.Decimal("78.14")
