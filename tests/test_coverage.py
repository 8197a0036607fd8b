"""Coverage answers: the rules of DESIGN section 3 on small worlds built for each case, and the HTTP side."""
import datetime as dt
from decimal import Decimal

import pytest
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from service.clock import today

from .coverage_world import put_province, put_regency, put_target, retract, submit

D = dt.date


@pytest.fixture
def kalteng(db):
    """Province 62 with Lamandau (eligible 10,000 from 2016-01-01) and a 95 percent target."""
    put_province(db, "62", "Kalimantan Tengah")
    put_regency(db, "62.09", name="Lamandau", population={D(2016, 1, 1): 10_000})
    put_target(db, D(2016, 1, 1), Decimal("95"))
    return db


def regency(client, reader, as_of, code="62.09"):
    response = client.get(f"/v1/regencies/{code}/coverage?as_of={as_of}", headers=reader)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def province(client, reader, as_of, code="62", **params):
    query = "".join(f"&{k}={v}" for k, v in params.items())
    response = client.get(f"/v1/provinces/{code}/coverage?as_of={as_of}{query}", headers=reader)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_last_count_is_carried_forward_to_later_dates(kalteng, client, reader):
    submit(kalteng, "62.09", D(2016, 3, 1), 5_000)

    before = regency(client, reader, "2016-02-29")
    after = regency(client, reader, "2016-06-30")

    assert (before["recorded"], before["last_reported_on"], before["coverage_percent"]) == (None, None, None)
    assert (after["recorded"], after["last_reported_on"]) == (5_000, "2016-03-01")
    assert after["coverage_percent"] == Decimal("50.00")


def test_regency_without_a_submission_has_null_figures_and_is_stale(kalteng, client, reader):
    row = regency(client, reader, "2016-06-30")

    assert row["eligible_population"] == 10_000
    assert row["target_percent"] == 95
    for field in ("recorded", "coverage_percent", "achievement_percent", "band", "remaining_to_target",
                  "last_reported_on", "pace_per_day", "projected_target_date"):
        assert row[field] is None, field
    assert row["stale"] is True


def test_regency_without_eligible_population_has_no_coverage(kalteng, client, reader):
    put_regency(kalteng, "62.10", name="Sukamara")
    submit(kalteng, "62.10", D(2016, 6, 1), 700)

    row = regency(client, reader, "2016-06-30", code="62.10")

    assert (row["recorded"], row["eligible_population"]) == (700, None)
    assert row["coverage_percent"] is row["achievement_percent"] is row["band"] is row["remaining_to_target"] is None


def test_without_a_target_achievement_band_and_remaining_are_null(db, client, reader):
    put_province(db, "62")
    put_regency(db, "62.09", population={D(2016, 1, 1): 1_000})
    submit(db, "62.09", D(2016, 6, 1), 500)

    row = regency(client, reader, "2016-06-30")

    assert row["coverage_percent"] == Decimal("50.00")
    assert row["target_percent"] is row["achievement_percent"] is row["band"] is row["remaining_to_target"] is None


def test_population_and_target_in_force_on_the_date_are_used(kalteng, client, reader):
    put_regency(kalteng, "62.09", population={D(2016, 4, 1): 8_000})
    put_target(kalteng, D(2016, 5, 1), Decimal("80.50"))
    submit(kalteng, "62.09", D(2016, 1, 15), 4_000)

    march = regency(client, reader, "2016-03-31")
    april = regency(client, reader, "2016-04-30")
    may = regency(client, reader, "2016-05-01")

    assert (march["eligible_population"], march["target_percent"], march["coverage_percent"]) == (10_000, 95, 40)
    assert (april["eligible_population"], april["target_percent"], april["coverage_percent"]) == (8_000, 95, 50)
    assert may["target_percent"] == Decimal("80.5")
    # 100 * 50 / 80.5 = 62.1118...
    assert may["achievement_percent"] == Decimal("62.11")
    assert may["band"] == "above_60"
    # ceil(0.805 * 8000) = 6440
    assert may["remaining_to_target"] == 6_440 - 4_000


def test_a_correction_for_the_same_date_replaces_the_count_and_a_retraction_restores_it(kalteng, client, reader):
    submit(kalteng, "62.09", D(2016, 6, 1), 6_000)
    correction = submit(kalteng, "62.09", D(2016, 6, 1), 6_500)
    assert regency(client, reader, "2016-06-30")["recorded"] == 6_500

    retract(kalteng, correction)

    assert regency(client, reader, "2016-06-30")["recorded"] == 6_000


def test_a_retracted_latest_report_falls_back_to_the_one_before(kalteng, client, reader):
    submit(kalteng, "62.09", D(2016, 5, 1), 3_000)
    submit(kalteng, "62.09", D(2016, 6, 1), 9_000, retraction_reason="typo")

    row = regency(client, reader, "2016-06-30")

    assert (row["recorded"], row["last_reported_on"]) == (3_000, "2016-05-01")


def test_a_backfill_counts_only_for_dates_on_or_after_it(kalteng, client, reader):
    submit(kalteng, "62.09", D(2016, 6, 1), 6_000)
    submit(kalteng, "62.09", D(2016, 3, 1), 2_000)

    assert regency(client, reader, "2016-04-01")["recorded"] == 2_000
    assert regency(client, reader, "2016-06-30")["recorded"] == 6_000


def test_band_comes_from_the_unrounded_achievement(kalteng, client, reader):
    # 94,999 of 100,000 at a 95 target: achievement 99.9989..., shown as 100.00, not yet met.
    put_regency(kalteng, "62.09", population={D(2016, 1, 1): 100_000})
    submit(kalteng, "62.09", D(2016, 6, 1), 94_999)

    row = regency(client, reader, "2016-06-30")

    assert row["achievement_percent"] == Decimal("100.00")
    assert row["band"] == "above_90"
    assert row["remaining_to_target"] == 1


def test_exactly_at_the_target_is_met_with_nothing_remaining(kalteng, client, reader):
    submit(kalteng, "62.09", D(2016, 6, 1), 9_500)

    row = regency(client, reader, "2016-06-30")

    assert (row["achievement_percent"], row["band"], row["remaining_to_target"]) == (100, "met", 0)
    assert row["projected_target_date"] is None


@pytest.mark.parametrize(("recorded", "eligible", "coverage"), [
    (1, 32, "3.13"),            # 3.125: half-up, where half-even would give 3.12
    (83_718, 187_204, "44.72"),  # Palangka Raya in the report
    (2, 3, "66.67"),
    (1, 3, "33.33"),
])
def test_percentages_are_rounded_half_up_once(db, client, reader, recorded, eligible, coverage):
    put_province(db, "62")
    put_regency(db, "62.09", population={D(2016, 1, 1): eligible})
    submit(db, "62.09", D(2016, 6, 1), recorded)

    row = regency(client, reader, "2016-06-30")

    assert row["coverage_percent"] == Decimal(coverage)


def test_percentages_are_written_as_exact_json_numbers(db, client, reader):
    put_province(db, "62")
    put_regency(db, "62.09", population={D(2016, 1, 1): 187_204})
    submit(db, "62.09", D(2016, 6, 1), 83_718)

    response = client.get("/v1/regencies/62.09/coverage?as_of=2016-06-30", headers=reader)

    assert b'"coverage_percent":44.72,' in response.data


@pytest.mark.parametrize(("days_since_report", "stale"), [(10, False), (11, True)])
def test_stale_after_the_configured_number_of_days(kalteng, make_app, reader, days_since_report, stale):
    client = make_app(stale_after_days=10).test_client()
    submit(kalteng, "62.09", D(2016, 6, 1), 5_000)
    as_of = D(2016, 6, 1) + dt.timedelta(days=days_since_report)

    assert regency(client, reader, as_of.isoformat())["stale"] is stale


def test_stale_defaults_to_31_days(kalteng, client, reader):
    submit(kalteng, "62.09", D(2016, 6, 1), 5_000)

    assert regency(client, reader, "2016-07-02")["stale"] is False
    assert regency(client, reader, "2016-07-03")["stale"] is True


def test_pace_and_projected_date_from_the_reports_90_days_apart(kalteng, client, reader):
    submit(kalteng, "62.09", D(2016, 3, 1), 1_000)   # in force on 2016-04-01 = D - 90
    submit(kalteng, "62.09", D(2016, 6, 20), 1_900)  # in force on D
    row = regency(client, reader, "2016-06-30")

    # 900 recorded over the 111 days from 2016-03-01 to 2016-06-20
    assert row["pace_per_day"] == Decimal("8.11")
    # ceil(7600 / 8.11) = 938 days after the last report
    assert row["remaining_to_target"] == 7_600
    assert row["projected_target_date"] == (D(2016, 6, 20) + dt.timedelta(days=938)).isoformat()


def test_no_projected_date_once_the_target_is_met(kalteng, client, reader):
    submit(kalteng, "62.09", D(2016, 3, 1), 5_000)
    submit(kalteng, "62.09", D(2016, 6, 20), 9_600)

    row = regency(client, reader, "2016-06-30")

    assert row["pace_per_day"] > 0 and row["band"] == "met"
    assert row["projected_target_date"] is None


def test_no_pace_when_the_same_report_is_in_force_at_both_ends(kalteng, client, reader):
    submit(kalteng, "62.09", D(2016, 1, 1), 1_000)

    row = regency(client, reader, "2016-06-30")

    assert row["pace_per_day"] is None and row["projected_target_date"] is None


def test_no_pace_without_a_report_90_days_before(kalteng, client, reader):
    submit(kalteng, "62.09", D(2016, 6, 1), 1_000)

    assert regency(client, reader, "2016-06-30")["pace_per_day"] is None


def test_a_falling_count_has_a_negative_pace_and_no_projection(kalteng, client, reader):
    submit(kalteng, "62.09", D(2016, 3, 1), 2_000)
    submit(kalteng, "62.09", D(2016, 6, 1), 1_000)

    row = regency(client, reader, "2016-06-30")

    assert row["pace_per_day"] == Decimal("-10.87")  # -1000 / 92
    assert row["projected_target_date"] is None


def test_province_totals_add_counts_and_count_a_silent_regency_as_zero(kalteng, client, reader):
    put_regency(kalteng, "62.01", population={D(2016, 1, 1): 30_000})   # never reports
    put_regency(kalteng, "62.10")                                       # no eligible population
    submit(kalteng, "62.09", D(2016, 6, 1), 9_000)
    submit(kalteng, "62.10", D(2016, 6, 1), 500)

    answer = province(client, reader, "2016-06-30")

    totals = answer["totals"]
    assert (totals["eligible_population"], totals["recorded"]) == (40_000, 9_000)
    assert totals["coverage_percent"] == Decimal("22.50")
    # 100 * 22.5 / 95 = 23.684...
    assert totals["achievement_percent"] == Decimal("23.68")
    assert totals["band"] == "below_60"
    assert totals["remaining_to_target"] == 38_000 - 9_000
    assert (totals["regencies_total"], totals["regencies_reporting"]) == (3, 2)


def test_province_without_any_eligible_population_has_null_totals(db, client, reader):
    put_province(db, "62")
    put_regency(db, "62.09")
    put_target(db, D(2016, 1, 1), Decimal("95"))
    submit(db, "62.09", D(2016, 6, 1), 500)

    totals = province(client, reader, "2016-06-30")["totals"]

    assert totals["eligible_population"] is totals["recorded"] is totals["coverage_percent"] is None
    assert (totals["regencies_total"], totals["regencies_reporting"]) == (1, 1)


def test_province_without_regencies_answers_its_name_target_and_no_rows(db, client, reader):
    put_province(db, "65", "Kalimantan Utara")
    put_target(db, D(2016, 1, 1), Decimal("95"))

    body = province(client, reader, "2016-06-30", code="65")

    assert body["province"] == {"code": "65", "name": "Kalimantan Utara"}
    assert body["target_percent"] == 95 and body["regencies"] == []
    assert (body["totals"]["regencies_total"], body["totals"]["regencies_reporting"]) == (0, 0)


def test_nation_adds_provinces_and_lists_one_without_regencies(kalteng, client, reader):
    put_province(kalteng, "61", "Kalimantan Barat")
    put_regency(kalteng, "61.01", population={D(2016, 1, 1): 30_000})
    put_province(kalteng, "63", "Kalimantan Selatan")
    submit(kalteng, "61.01", D(2016, 6, 1), 15_000)
    submit(kalteng, "62.09", D(2016, 6, 1), 10_000)

    answer = client.get("/v1/coverage?as_of=2016-06-30", headers=reader).get_json()

    assert [p["code"] for p in answer["provinces"]] == ["61", "62", "63"]
    assert answer["provinces"][0]["coverage_percent"] == 50
    assert answer["provinces"][1]["band"] == "met"
    assert answer["provinces"][2]["regencies_total"] == 0
    assert answer["provinces"][2]["eligible_population"] is None
    assert (answer["totals"]["eligible_population"], answer["totals"]["recorded"]) == (40_000, 25_000)
    assert answer["totals"]["coverage_percent"] == Decimal("62.50")
    assert answer["target_percent"] == 95


def test_nation_without_any_province_still_answers_the_target(db, client, reader):
    put_target(db, D(2016, 1, 1), Decimal("95"))

    answer = client.get("/v1/coverage?as_of=2016-06-30", headers=reader).get_json()

    assert answer["target_percent"] == 95 and answer["provinces"] == []
    assert (answer["totals"]["regencies_total"], answer["totals"]["eligible_population"]) == (0, None)


@pytest.mark.parametrize(("sort", "order"), [
    ("code", ["62.01", "62.02", "62.03", "62.04"]),
    ("name", ["62.03", "62.02", "62.04", "62.01"]),
    ("coverage_percent", ["62.02", "62.03", "62.01", "62.04"]),
    ("-coverage_percent", ["62.01", "62.03", "62.02", "62.04"]),
])
def test_province_rows_sort_and_put_unknown_coverage_last(db, client, reader, sort, order):
    put_province(db, "62")
    for code, name, recorded in [("62.01", "Dusun", 900), ("62.02", "Barito", 100), ("62.03", "Alpha", 500)]:
        put_regency(db, code, name=name, population={D(2016, 1, 1): 1_000})
        submit(db, code, D(2016, 6, 1), recorded)
    put_regency(db, "62.04", name="Barito Timur")

    answer = province(client, reader, "2016-06-30", sort=sort)

    assert [row["code"] for row in answer["regencies"]] == order


def test_history_by_week_ends_on_sundays_and_includes_to(kalteng, client, reader):
    submit(kalteng, "62.09", D(2016, 6, 1), 5_000)
    submit(kalteng, "62.09", D(2016, 6, 14), 6_000)

    response = client.get("/v1/regencies/62.09/coverage/history?from=2016-05-30&to=2016-06-22&interval=week",
                          headers=reader)

    assert response.status_code == 200
    points = response.get_json()["points"]
    assert [p["date"] for p in points] == ["2016-06-05", "2016-06-12", "2016-06-19", "2016-06-22"]
    assert [p["recorded"] for p in points] == [5_000, 5_000, 6_000, 6_000]
    assert [p["coverage_percent"] for p in points] == [50, 50, 60, 60]
    assert points[0]["band"] == "below_60" and points[0]["target_percent"] == 95


def test_history_by_month_uses_month_ends(kalteng, client, reader):
    response = client.get("/v1/provinces/62/coverage/history?from=2016-01-15&to=2016-04-30&interval=month",
                          headers=reader)

    answer = response.get_json()
    assert answer["interval"] == "month"
    assert [p["date"] for p in answer["points"]] == ["2016-01-31", "2016-02-29", "2016-03-31", "2016-04-30"]
    assert {p["recorded"] for p in answer["points"]} == {0}
    assert {p["eligible_population"] for p in answer["points"]} == {10_000}


def test_province_history_adds_its_regencies_on_each_date(kalteng, client, reader):
    put_regency(kalteng, "62.01", population={D(2016, 1, 1): 30_000})
    submit(kalteng, "62.09", D(2016, 6, 2), 5_000)
    submit(kalteng, "62.01", D(2016, 6, 3), 15_000)

    points = client.get("/v1/provinces/62/coverage/history?from=2016-06-01&to=2016-06-03&interval=day",
                        headers=reader).get_json()["points"]

    assert [(p["date"], p["recorded"], p["coverage_percent"]) for p in points] == [
        ("2016-06-01", 0, 0), ("2016-06-02", 5_000, Decimal("12.50")), ("2016-06-03", 20_000, 50),
    ]


def test_history_of_1000_points_is_answered_and_1001_is_refused(kalteng, client, reader):
    start = D(2016, 1, 1)
    ok = client.get(f"/v1/regencies/62.09/coverage/history?from={start}&to={start + dt.timedelta(days=999)}"
                    "&interval=day", headers=reader)
    too_many = client.get(f"/v1/regencies/62.09/coverage/history?from={start}&to={start + dt.timedelta(days=1000)}"
                          "&interval=day", headers=reader)

    assert ok.status_code == 200 and len(ok.get_json()["points"]) == 1000
    assert too_many.status_code == 422
    assert too_many.get_json()["errors"][0]["pointer"] == "from"


def test_history_from_after_to_is_refused(kalteng, client, reader):
    response = client.get("/v1/regencies/62.09/coverage/history?from=2016-06-02&to=2016-06-01", headers=reader)

    assert response.status_code == 422
    assert [e["pointer"] for e in response.get_json()["errors"]] == ["from"]


def test_history_needs_from(kalteng, client, reader):
    response = client.get("/v1/provinces/62/coverage/history", headers=reader)

    assert response.status_code == 422
    assert [e["pointer"] for e in response.get_json()["errors"]] == ["from"]


@pytest.mark.parametrize("path", ["/v1/coverage", "/v1/provinces/62/coverage", "/v1/regencies/62.09/coverage"])
@pytest.mark.parametrize("as_of", ["2016-6-30", "2016-02-30", "yesterday", "FUTURE"])
def test_future_or_malformed_as_of_is_refused(kalteng, client, reader, path, as_of):
    if as_of == "FUTURE":
        as_of = (today() + dt.timedelta(days=1)).isoformat()

    response = client.get(f"{path}?as_of={as_of}", headers=reader)

    assert response.status_code == 422
    assert [e["pointer"] for e in response.get_json()["errors"]] == ["as_of"]


def test_as_of_defaults_to_today_in_indonesia_east(kalteng, client, reader):
    submit(kalteng, "62.09", today(), 1_000)

    row = client.get("/v1/regencies/62.09/coverage", headers=reader).get_json()

    assert row["as_of"] == today().isoformat()
    assert row["recorded"] == 1_000


@pytest.mark.parametrize("path", [
    "/v1/provinces/99/coverage", "/v1/regencies/62.99/coverage",
    "/v1/provinces/99/coverage/history?from=2016-01-01", "/v1/regencies/62.99/coverage/history?from=2016-01-01",
])
def test_unknown_province_or_regency_is_404(kalteng, client, reader, path):
    assert client.get(path, headers=reader).status_code == 404


def test_unknown_query_parameter_is_400(kalteng, client, reader):
    response = client.get("/v1/provinces/62/coverage?order=name", headers=reader)

    assert response.status_code == 400


def test_unknown_sort_is_422(kalteng, client, reader):
    response = client.get("/v1/provinces/62/coverage?sort=band", headers=reader)

    assert response.status_code == 422
    assert [e["pointer"] for e in response.get_json()["errors"]] == ["sort"]


def test_coverage_needs_a_key(kalteng, client):
    assert client.get("/v1/coverage").status_code == 401


@pytest.mark.parametrize("path", [
    "/v1/coverage?as_of=2016-06-30", "/v1/provinces/62/coverage?as_of=2016-06-30",
    "/v1/regencies/62.09/coverage?as_of=2016-06-30",
    "/v1/regencies/62.09/coverage/history?from=2016-01-01&to=2016-06-30",
    "/v1/provinces/62/coverage/history?from=2016-01-01&to=2016-06-30",
])
def test_etag_answers_304_until_a_new_submission_changes_the_figures(kalteng, client, reader, path):
    submit(kalteng, "62.09", D(2016, 6, 1), 5_000)
    first = client.get(path, headers=reader)
    etag = first.headers["ETag"]

    unchanged = client.get(path, headers={**reader, "If-None-Match": etag})
    submit(kalteng, "62.09", D(2016, 6, 2), 5_100)
    changed = client.get(path, headers={**reader, "If-None-Match": etag})

    assert unchanged.status_code == 304 and unchanged.data == b""
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_a_submission_answered_201_is_in_the_next_read_and_its_retraction_too(kalteng, client, reader, make_key):
    office = make_key("submitter", "62.09", name="Disdukcapil Lamandau")
    assert province(client, reader, "2016-06-30")["totals"]["recorded"] == 0
    earlier = client.post("/v1/submissions", json={"regency_code": "62.09", "as_of": "2016-06-01", "recorded": 5_000},
                          headers=office)
    assert earlier.status_code == 201

    latest = client.post("/v1/submissions", json={"regency_code": "62.09", "as_of": "2016-06-30", "recorded": 7_777},
                         headers=office)
    assert latest.status_code == 201
    assert province(client, reader, "2016-06-30")["totals"]["recorded"] == 7_777
    assert regency(client, reader, "2016-06-30")["last_reported_on"] == "2016-06-30"

    retraction = client.post(f"/v1/submissions/{latest.get_json()['id']}/retract", json={"reason": "typo"},
                             headers=office)
    assert retraction.status_code == 200
    assert province(client, reader, "2016-06-30")["totals"]["recorded"] == 5_000


def test_province_coverage_as_csv_has_a_header_of_field_names_and_a_row_per_regency(kalteng, client, reader):
    put_regency(kalteng, "62.10", name="Sukamara, Kota", kind="kota")
    submit(kalteng, "62.09", D(2016, 6, 1), 3_125)

    response = client.get("/v1/provinces/62/coverage?as_of=2016-06-30", headers={**reader, "Accept": "text/csv"})

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    lines = response.data.decode().splitlines()
    assert lines[0] == ("as_of,code,name,kind,province_code,eligible_population,recorded,coverage_percent,"
                        "target_percent,achievement_percent,band,remaining_to_target,last_reported_on,stale")
    assert lines[1] == ("2016-06-30,62.09,Lamandau,kabupaten,62,10000,3125,31.25,95.00,32.89,below_60,6375,"
                        "2016-06-01,false")
    assert lines[2] == '2016-06-30,62.10,"Sukamara, Kota",kota,62,,,,95.00,,,,,true'
    assert len(lines) == 3


@pytest.mark.parametrize(("path", "first_column", "rows"), [
    ("/v1/coverage?as_of=2016-06-30", "as_of,code,name,eligible_population", 1),
    ("/v1/regencies/62.09/coverage?as_of=2016-06-30", "as_of,code,name,kind", 1),
    ("/v1/regencies/62.09/coverage/history?from=2016-04-01&to=2016-06-30", "date,eligible_population", 3),
])
def test_other_coverage_answers_as_csv(kalteng, client, reader, path, first_column, rows):
    response = client.get(path, headers={**reader, "Accept": "text/csv"})

    lines = response.data.decode().splitlines()
    assert response.mimetype == "text/csv"
    assert lines[0].startswith(first_column)
    assert len(lines) == 1 + rows


def test_csv_has_its_own_etag_and_honours_if_none_match(kalteng, client, reader):
    path = "/v1/provinces/62/coverage?as_of=2016-06-30"
    as_csv = {**reader, "Accept": "text/csv"}
    first = client.get(path, headers=as_csv)

    again = client.get(path, headers={**as_csv, "If-None-Match": first.headers["ETag"]})

    assert again.status_code == 304
    assert first.headers["ETag"] != client.get(path, headers=reader).headers["ETag"]


@pytest.mark.parametrize("accept", [
    None, "", "*/*", " */* ", "application/json", "application/*", "text/csv", "text/*", "TEXT/CSV",
    "*/*;q=0.1, application/json;q=0", "application/json;q=0.5, text/csv", "application/json, text/csv;q=0.9",
])
def test_the_answer_is_csv_exactly_when_werkzeug_picks_csv_for_the_accept_header(kalteng, client, reader, accept):
    headers = reader if accept is None else {**reader, "Accept": accept}
    picked = parse_accept_header(accept, MIMEAccept).best_match(["application/json", "text/csv"])

    response = client.get("/v1/provinces/62/coverage?as_of=2016-06-30", headers=headers)

    assert response.status_code == 200
    assert response.mimetype == ("text/csv" if picked == "text/csv" else "application/json")


def test_json_is_the_default_for_any_accept(kalteng, client, reader):
    response = client.get("/v1/coverage?as_of=2016-06-30", headers={**reader, "Accept": "*/*"})

    assert response.mimetype == "application/json"
    assert response.get_json()["totals"]["regencies_total"] == 1
