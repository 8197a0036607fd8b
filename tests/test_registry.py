"""The registry over HTTP: provinces, regencies, eligible populations, national targets, and their audit trail."""
import csv
import datetime as dt
import decimal
import json

import pytest
from flask.testing import FlaskClient

from service.regions import queries as regions
from service.regions.imports import import_regions, parse_regions

from .conftest import SHARED_DATA, count_rows

WILAYAH = SHARED_DATA / "wilayah"
REGISTRY_TABLES = ("province", "regency", "eligible_population", "national_target")


def snapshot(db):
    """Row counts of every registry table and of the audit trail: a bad write must leave them all as they were."""
    return {table: count_rows(db, table) for table in (*REGISTRY_TABLES, "audit_event")}


def assert_problem(response, status, *, slug=None):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert body["status"] == status
    assert body["title"] and body["detail"]
    assert body["type"] == (f"urn:ktpel-coverage:problem:{slug}" if slug else body["type"])
    return body


def pointers(body):
    return sorted(error["pointer"] for error in body.get("errors", []))


def audit_events(client, admin, **params):
    response = client.get("/v1/audit-events", query_string=params, headers=admin)
    assert response.status_code == 200
    return response.json["items"]


@pytest.fixture
def kalteng(db):
    """Province 62 with Lamandau (62.09) and Palangkaraya (62.71), no audit events."""
    with db:
        regions.put_province(db, code="62", name="Kalimantan Tengah")
        regions.put_regency(db, code="62.09", name="Lamandau", kind="kabupaten", province_code="62")
        regions.put_regency(db, code="62.71", name="Palangkaraya", kind="kota", province_code="62")


@pytest.fixture
def all_of_indonesia(db):
    """The 38 provinces and 514 regencies of ../shared/data/wilayah, loaded through the import code."""
    provinces, regencies = parse_regions((WILAYAH / "provinces.csv").read_text(),
                                         (WILAYAH / "regencies.csv").read_text())
    with db:
        import_regions(db, provinces, regencies)
    with db, db.cursor() as cur:
        cur.execute("TRUNCATE audit_event")
    with (WILAYAH / "regencies.csv").open() as f:
        return list(csv.DictReader(f))


# ---- provinces ----

def test_put_province_creates_with_201_location_and_etag(client, db, admin):
    response = client.put("/v1/provinces/62", json={"name": "Kalimantan Tengah"}, headers=admin)
    assert response.status_code == 201
    assert response.headers["Location"].endswith("/v1/provinces/62")
    assert response.json == {"code": "62", "name": "Kalimantan Tengah"}
    read = client.get("/v1/provinces/62", headers=admin)
    assert read.json == {"code": "62", "name": "Kalimantan Tengah"}
    assert read.headers["ETag"] == response.headers["ETag"]


def test_put_province_again_is_200_and_the_same_records_no_audit_event(client, db, admin):
    client.put("/v1/provinces/62", json={"name": "Kalimantan Tengah"}, headers=admin)
    events = count_rows(db, "audit_event")
    again = client.put("/v1/provinces/62", json={"name": "Kalimantan Tengah"}, headers=admin)
    assert again.status_code == 200
    assert count_rows(db, "audit_event") == events
    renamed = client.put("/v1/provinces/62", json={"name": "Kalteng"}, headers=admin)
    assert renamed.status_code == 200 and renamed.json["name"] == "Kalteng"
    assert count_rows(db, "audit_event") == events + 1
    assert client.get("/v1/provinces/62", headers=admin).json["name"] == "Kalteng"


def test_get_with_matching_if_none_match_is_304(client, admin, kalteng):
    first = client.get("/v1/provinces/62", headers=admin)
    etag = first.headers["ETag"]
    second = client.get("/v1/provinces/62", headers={**admin, "If-None-Match": etag})
    assert second.status_code == 304
    assert second.data == b""
    assert second.headers["ETag"] == etag
    other = client.get("/v1/provinces/62", headers={**admin, "If-None-Match": '"stale"'})
    assert other.status_code == 200


def test_put_with_stale_if_match_is_412_and_stores_nothing(client, db, admin, kalteng):
    etag = client.get("/v1/provinces/62", headers=admin).headers["ETag"]
    client.put("/v1/provinces/62", json={"name": "Kalteng"}, headers=admin)
    before = snapshot(db)
    stale = client.put("/v1/provinces/62", json={"name": "Central Kalimantan"}, headers={**admin, "If-Match": etag})
    assert_problem(stale, 412, slug="precondition-failed")
    assert snapshot(db) == before
    assert client.get("/v1/provinces/62", headers=admin).json["name"] == "Kalteng"


def test_put_with_current_if_match_writes(client, admin, kalteng):
    etag = client.get("/v1/regencies/62.09", headers=admin).headers["ETag"]
    body = {"name": "Kabupaten Lamandau", "kind": "kabupaten", "province_code": "62"}
    response = client.put("/v1/regencies/62.09", json=body, headers={**admin, "If-Match": etag})
    assert response.status_code == 200
    assert response.json["name"] == "Kabupaten Lamandau"


def test_if_match_on_a_resource_that_does_not_exist_is_412(client, db, admin):
    response = client.put("/v1/provinces/62", json={"name": "Kalimantan Tengah"}, headers={**admin, "If-Match": '"x"'})
    assert_problem(response, 412)
    assert count_rows(db, "province") == 0


def test_unknown_province_is_404(client, admin):
    assert_problem(client.get("/v1/provinces/99", headers=admin), 404, slug="not-found")


@pytest.mark.parametrize("code", ["6", "620", "ab", "62.09", "%D9%A6%D9%A2", "62%0A"])
def test_put_province_with_a_bad_code_is_422_and_stores_nothing(client, db, admin, code):
    before = snapshot(db)
    response = client.put(f"/v1/provinces/{code}", json={"name": "X"}, headers=admin)
    body = assert_problem(response, 422)
    assert pointers(body) == ["code"]
    assert snapshot(db) == before


def test_provinces_page_by_keyset_to_the_end(client, reader, all_of_indonesia):
    expected = [row["code"] for row in csv.DictReader((WILAYAH / "provinces.csv").open())]
    seen, url, pages = [], "/v1/provinces?limit=10", 0
    while url:
        response = client.get(url, headers=reader)
        assert response.status_code == 200
        seen += [p["code"] for p in response.json["items"]]
        pages += 1
        link = response.headers.get("Link")
        assert (link is None) == (response.json["next_cursor"] is None)
        url = link.split(">")[0].lstrip("<") if link else None
    assert seen == sorted(expected)
    assert pages == -(-len(expected) // 10)


# ---- regencies ----

def test_put_regency_creates_and_get_shows_it_with_its_current_population(client, db, admin):
    client.put("/v1/provinces/62", json={"name": "Kalimantan Tengah"}, headers=admin)
    body = {"name": "Lamandau", "kind": "kabupaten", "province_code": "62"}
    created = client.put("/v1/regencies/62.09", json=body, headers=admin)
    assert created.status_code == 201
    assert created.headers["Location"].endswith("/v1/regencies/62.09")
    assert created.json == {**body, "code": "62.09", "eligible_population": None}
    population = client.put("/v1/regencies/62.09/eligible-population/2016-01-01",
                            json={"count": 67870, "source": "Disdukcapil"}, headers=admin)
    assert population.status_code == 201
    assert population.headers["Location"].endswith("/v1/regencies/62.09/eligible-population/2016-01-01")
    read = client.get("/v1/regencies/62.09", headers=admin).json
    assert read["eligible_population"] == {"effective_from": "2016-01-01", "count": 67870, "source": "Disdukcapil"}


def test_regency_code_must_start_with_its_province(client, db, admin, kalteng):
    before = snapshot(db)
    response = client.put("/v1/regencies/63.01", json={"name": "X", "kind": "kota", "province_code": "62"},
                          headers=admin)
    body = assert_problem(response, 422, slug="invalid-input")
    assert pointers(body) == ["/province_code"]
    assert snapshot(db) == before


def test_regency_of_an_unknown_province_is_422(client, db, admin):
    before = snapshot(db)
    response = client.put("/v1/regencies/99.01", json={"name": "X", "kind": "kota", "province_code": "99"},
                          headers=admin)
    assert pointers(assert_problem(response, 422)) == ["/province_code"]
    assert snapshot(db) == before


@pytest.mark.parametrize(("body", "expected"), [
    ({"name": "X", "kind": "desa", "province_code": "62"}, ["/kind"]),
    ({"name": "", "kind": "kota", "province_code": "62"}, ["/name"]),
    ({"kind": "kota", "province_code": "62"}, ["/name"]),
    ({"name": "X", "kind": "kota", "province_code": 62}, ["/province_code"]),
    ({"name": "X", "kind": "kota", "province_code": "62", "bps_code": "6209"}, ["/bps_code"]),
    ({"name": 1, "kind": 2, "province_code": "62"}, ["/kind", "/name"]),
    ([{"name": "X"}], ["/"]),
])
def test_put_regency_with_bad_fields_names_each_one_and_stores_nothing(client, db, admin, kalteng, body, expected):
    before = snapshot(db)
    response = client.put("/v1/regencies/62.10", json=body, headers=admin)
    assert pointers(assert_problem(response, 422, slug="invalid-input")) == expected
    assert snapshot(db) == before


def test_list_regencies_filters_by_province_kind_and_name(client, reader, all_of_indonesia):
    in_62 = client.get("/v1/regencies?province=62", headers=reader).json["items"]
    assert [r["code"] for r in in_62] == sorted(r["code"] for r in all_of_indonesia if r["province_code"] == "62")
    kota = client.get("/v1/regencies?province=62&kind=kota", headers=reader).json["items"]
    assert [r["code"] for r in kota] == sorted(
        r["code"] for r in all_of_indonesia if r["province_code"] == "62" and r["kind"] == "kota")
    by_name = client.get("/v1/regencies?q=lAmAnDaU", headers=reader).json["items"]
    assert [r["code"] for r in by_name] == ["62.09"]
    pattern = client.get("/v1/regencies?q=%25", headers=reader).json["items"]
    assert pattern == []  # a literal %, not a wildcard


def test_regencies_page_by_keyset_following_link_to_the_end(client, reader, all_of_indonesia):
    seen, url, pages = [], "/v1/regencies?limit=100", 0
    while url:
        response = client.get(url, headers=reader)
        assert response.status_code == 200
        seen += [r["code"] for r in response.json["items"]]
        pages += 1
        link = response.headers.get("Link")
        assert (link is None) == (response.json["next_cursor"] is None)
        if link:
            assert link.endswith('rel="next"') and "limit=100" in link
        url = link.split(">")[0].lstrip("<") if link else None
    assert seen == sorted(r["code"] for r in all_of_indonesia)
    assert len(set(seen)) == 514
    assert pages == 6


def test_filters_stay_on_every_page(client, reader, all_of_indonesia):
    first = client.get("/v1/regencies?province=62&limit=5", headers=reader)
    second = client.get(first.headers["Link"].split(">")[0].lstrip("<"), headers=reader)
    assert all(r["province_code"] == "62" for r in first.json["items"] + second.json["items"])
    assert [r["code"] for r in second.json["items"]][0] > first.json["items"][-1]["code"]


@pytest.mark.parametrize(("query", "pointer"), [
    ("limit=0", "limit"), ("limit=1001", "limit"), ("limit=ten", "limit"), ("province=6", "province"),
    ("kind=desa", "kind"), ("cursor=%21%21not-ours", "cursor"), ("limit=5&limit=6", "limit"),
])
def test_bad_query_values_are_422_naming_the_parameter(client, reader, query, pointer):
    body = assert_problem(client.get(f"/v1/regencies?{query}", headers=reader), 422)
    assert pointers(body) == [pointer]


def test_unknown_query_parameter_is_400_naming_it(client, reader):
    body = assert_problem(client.get("/v1/regencies?provinsi=62", headers=reader), 400)
    assert pointers(body) == ["provinsi"]


def test_every_get_refuses_an_unknown_query_parameter(app, client, admin, kalteng):
    from .test_auth import v1_operations

    wrong = {}
    for method, rule, url, _ in v1_operations(app):
        if method == "GET":
            response = FlaskClient(client.application).get(f"{url}?provinsi=62", headers=admin)
            if response.status_code != 400 or pointers(response.json) != ["provinsi"]:
                wrong[rule] = response.status_code
            else:
                client.get(f"{url}?provinsi=62", headers=admin)  # and the spec describes that 400
    assert not wrong, f"these GETs took an unknown query parameter: {wrong}"


@pytest.mark.parametrize(("url", "good"), [
    ("/v1/provinces/62", {"name": "Kalimantan Tengah"}),
    ("/v1/regencies/62.09", {"name": "Lamandau", "kind": "kabupaten", "province_code": "62"}),
    ("/v1/regencies/62.09/eligible-population/2016-01-01", {"count": 5}),
    ("/v1/national-targets/2016-01-01", {"target_percent": 95}),
])
def test_a_write_with_an_unknown_query_parameter_is_400_and_stores_nothing(client, db, admin, kalteng, url, good):
    before = snapshot(db)
    body = assert_problem(client.put(f"{url}?dry_run=true", json=good, headers=admin), 400)
    assert pointers(body) == ["dry_run"]
    assert snapshot(db) == before


# ---- eligible population ----

def test_eligible_population_history_is_oldest_first_and_current_is_the_latest_in_force(client, admin, kalteng):
    for day, count in (("2016-01-01", 60000), ("2015-01-01", 55000), ("2099-01-01", 90000)):
        client.put(f"/v1/regencies/62.09/eligible-population/{day}", json={"count": count}, headers=admin)
    history = client.get("/v1/regencies/62.09/eligible-population", headers=admin).json
    assert [i["effective_from"] for i in history["items"]] == ["2015-01-01", "2016-01-01", "2099-01-01"]
    assert client.get("/v1/regencies/62.09", headers=admin).json["eligible_population"]["count"] == 60000


def test_eligible_population_pages(client, admin, kalteng):
    for year in range(2011, 2016):
        client.put(f"/v1/regencies/62.09/eligible-population/{year}-01-01", json={"count": year}, headers=admin)
    first = client.get("/v1/regencies/62.09/eligible-population?limit=3", headers=admin)
    second = client.get(first.headers["Link"].split(">")[0].lstrip("<"), headers=admin)
    assert [i["count"] for i in first.json["items"] + second.json["items"]] == list(range(2011, 2016))
    assert second.json["next_cursor"] is None


def test_eligible_population_changed_then_same(client, db, admin, kalteng):
    url = "/v1/regencies/62.09/eligible-population/2016-01-01"
    assert client.put(url, json={"count": 100}, headers=admin).status_code == 201
    changed = client.put(url, json={"count": 101, "source": "revised"}, headers=admin)
    assert changed.status_code == 200 and changed.json["count"] == 101
    events = count_rows(db, "audit_event")
    assert client.put(url, json={"count": 101, "source": "revised"}, headers=admin).status_code == 200
    assert count_rows(db, "audit_event") == events


@pytest.mark.parametrize("count", [0, -1, "5", 5.0, 5.5, True, None, 3_000_000_000])
def test_eligible_population_count_must_be_a_whole_number_of_at_least_one(client, db, admin, kalteng, count):
    before = snapshot(db)
    response = client.put("/v1/regencies/62.09/eligible-population/2016-01-01", json={"count": count}, headers=admin)
    assert pointers(assert_problem(response, 422)) == ["/count"]
    assert snapshot(db) == before


def test_eligible_population_of_an_unknown_regency_is_404_and_stores_nothing(client, db, admin, kalteng):
    before = snapshot(db)
    response = client.put("/v1/regencies/62.99/eligible-population/2016-01-01", json={"count": 5}, headers=admin)
    assert_problem(response, 404)
    assert snapshot(db) == before
    assert_problem(client.get("/v1/regencies/62.99/eligible-population", headers=admin), 404)


@pytest.mark.parametrize("day", ["2016-02-30", "20160101", "2016-1-1", "yesterday"])
def test_eligible_population_with_a_bad_date_in_the_path_is_422(client, db, admin, kalteng, day):
    before = snapshot(db)
    response = client.put(f"/v1/regencies/62.09/eligible-population/{day}", json={"count": 5}, headers=admin)
    assert pointers(assert_problem(response, 422)) == ["effective_from"]
    assert snapshot(db) == before


# ---- national targets ----

def test_national_target_created_changed_same(client, db, admin):
    url = "/v1/national-targets/2016-01-01"
    created = client.put(url, json={"target_percent": 95, "note": "RPJMN"}, headers=admin)
    assert created.status_code == 201
    assert created.headers["Location"].endswith(url)
    assert created.json == {"effective_from": "2016-01-01", "target_percent": 95, "note": "RPJMN"}
    changed = client.put(url, json={"target_percent": 96.5, "note": "RPJMN"}, headers=admin)
    assert changed.status_code == 200 and changed.json["target_percent"] == 96.5
    events = count_rows(db, "audit_event")
    same = client.put(url, json={"target_percent": 96.50, "note": "RPJMN"}, headers=admin)
    assert same.status_code == 200
    assert same.headers["ETag"] == changed.headers["ETag"]
    assert count_rows(db, "audit_event") == events
    listed = client.get("/v1/national-targets", headers=admin).json
    assert listed == {"items": [{"effective_from": "2016-01-01", "target_percent": 96.5, "note": "RPJMN"}],
                      "next_cursor": None}


@pytest.mark.parametrize("raw", ["100", "0.01", "95.1", "1e2"])
def test_national_target_accepts_the_edges(client, admin, raw):
    response = client.put("/v1/national-targets/2016-01-01", data=f'{{"target_percent": {raw}}}',
                          content_type="application/json", headers=admin)
    assert response.status_code == 201
    assert response.json["target_percent"] == decimal.Decimal(raw)


@pytest.mark.parametrize("raw", ["95.125", "0", "-1", "100.01", '"95"', "true", "null", "1e400", "1e-400", "[95]"])
def test_national_target_out_of_bounds_or_too_precise_is_422_and_stores_nothing(client, db, admin, raw):
    before = snapshot(db)
    response = client.put("/v1/national-targets/2016-01-01", data=f'{{"target_percent": {raw}}}',
                          content_type="application/json", headers=admin)
    assert pointers(assert_problem(response, 422, slug="invalid-input")) == ["/target_percent"]
    assert snapshot(db) == before


def test_national_target_unknown_field_is_422_with_its_pointer(client, db, admin):
    before = snapshot(db)
    response = client.put("/v1/national-targets/2016-01-01", json={"target_percent": 95, "targte": 1}, headers=admin)
    body = assert_problem(response, 422)
    assert body["errors"] == [{"pointer": "/targte", "detail": body["errors"][0]["detail"]}]
    assert "nknown" in body["errors"][0]["detail"]
    assert snapshot(db) == before


# ---- the HTTP errors every write shares ----

WRITES = [
    ("/v1/provinces/62", {"name": "Kalimantan Tengah"}),
    ("/v1/regencies/62.09", {"name": "Lamandau", "kind": "kabupaten", "province_code": "62"}),
    ("/v1/regencies/62.09/eligible-population/2016-01-01", {"count": 5}),
    ("/v1/national-targets/2016-01-01", {"target_percent": 95}),
]


@pytest.mark.parametrize(("url", "good"), WRITES)
def test_malformed_json_is_400_and_stores_nothing(client, db, admin, kalteng, url, good):
    before = snapshot(db)
    for raw in ('{"name": ', "{'name': 'x'}", '{"target_percent": NaN}', "\xff\xfe"):
        response = client.put(url, data=raw.encode("latin-1"), content_type="application/json", headers=admin)
        body = assert_problem(response, 400)
        assert "Traceback" not in json.dumps(body)
    assert snapshot(db) == before


@pytest.mark.parametrize(("url", "good"), WRITES)
def test_wrong_content_type_is_415_and_stores_nothing(client, db, admin, kalteng, url, good):
    before = snapshot(db)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        response = client.put(url, data=json.dumps(good), content_type=content_type, headers=admin)
        assert_problem(response, 415)
    assert snapshot(db) == before


@pytest.mark.parametrize(("url", "good"), WRITES)
def test_body_over_one_mib_is_413_and_stores_nothing(client, db, admin, kalteng, url, good):
    before = snapshot(db)
    huge = json.dumps({**good, "note": "x" * (1024 * 1024)})
    response = client.put(url, data=huge, content_type="application/json", headers=admin)
    assert_problem(response, 413)
    assert snapshot(db) == before


@pytest.mark.parametrize(("url", "good"), WRITES)
def test_body_that_is_not_an_object_is_422(client, db, admin, kalteng, url, good):
    before = snapshot(db)
    for body in ([good], "x", 5, None):
        response = client.put(url, data=json.dumps(body), content_type="application/json", headers=admin)
        assert pointers(assert_problem(response, 422)) == ["/"]
    assert snapshot(db) == before


@pytest.mark.parametrize(("url", "good"), WRITES)
def test_a_nul_character_in_a_string_is_422_and_stores_nothing(client, db, admin, kalteng, url, good):
    before = snapshot(db)
    body = {**good, ("source" if "population" in url else "note" if "target" in url else "name"): "a\u0000b"}
    response = client.put(url, json=body, headers=admin)
    assert_problem(response, 422)
    assert snapshot(db) == before


@pytest.mark.parametrize(("url", "good"), WRITES)
def test_an_unpaired_surrogate_in_a_string_is_422_and_stores_nothing(client, db, admin, kalteng, url, good):
    before = snapshot(db)
    field = "source" if "population" in url else "note" if "target" in url else "name"
    data = json.dumps({**good, field: "Kapuas \ud800"})  # ASCII: the surrogate travels as the escape \ud800

    response = client.put(url, data=data, content_type="application/json", headers=admin)

    assert pointers(assert_problem(response, 422)) == [f"/{field}"]
    assert snapshot(db) == before


def test_unknown_path_is_404_problem(client, reader):
    body = assert_problem(client.get("/v1/no-such-thing", headers=reader), 404)
    assert body["type"] == "about:blank"
    assert_problem(client.get("/nowhere"), 404)


def test_wrong_method_is_405_problem_with_allow(client, admin):
    response = client.delete("/v1/provinces/62", headers=admin)
    assert_problem(response, 405)
    assert "PUT" in response.headers["Allow"] and "GET" in response.headers["Allow"]
    assert_problem(client.post("/v1/national-targets", headers=admin), 405)


@pytest.mark.parametrize("url", ["/v1/provinces/%00", "/v1/regencies/62.0%00", "/v1/regencies/%00/eligible-population",
                                 "/v1/regencies?q=%00", "/v1/regencies?cursor=Ilx1MDAwMCI"])
def test_a_nul_character_in_the_url_is_a_client_error_not_a_crash(client, reader, url):
    response = client.get(url, headers=reader)
    assert 400 <= response.status_code < 500
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("code", ["%D9%A6%D9%A2.%D9%A0%D9%A9", "62.09%0A"])
def test_put_regency_with_a_code_of_non_ascii_digits_or_a_newline_is_422(client, db, admin, kalteng, code):
    before = snapshot(db)
    response = client.put(f"/v1/regencies/{code}", json={"name": "X", "kind": "kota", "province_code": "62"},
                          headers=admin)
    assert pointers(assert_problem(response, 422)) == ["code"]
    assert snapshot(db) == before


# ---- the audit trail ----

def test_every_write_is_an_audit_event_with_who_what_before_after_and_request_id(client, make_key, db):
    admin = make_key("admin", name="Kemendagri operator")
    writes = [
        ("/v1/provinces/62", {"name": "Kalimantan Tengah"}, "province.put"),
        ("/v1/provinces/62", {"name": "Kalteng"}, "province.put"),
        ("/v1/regencies/62.09", {"name": "Lamandau", "kind": "kabupaten", "province_code": "62"}, "regency.put"),
        ("/v1/regencies/62.09/eligible-population/2016-01-01", {"count": 5}, "eligible_population.put"),
        ("/v1/national-targets/2016-01-01", {"target_percent": 95}, "national_target.put"),
    ]
    answers = []
    for n, (url, body, _) in enumerate(writes):
        answers.append(client.put(url, json=body, headers={**admin, "X-Request-ID": f"req-{n}"}))
    events = audit_events(client, admin)
    assert [e["action"] for e in events] == [action for _, _, action in writes]
    assert [e["resource"] for e in events] == [url for url, _, _ in writes]
    assert [e["request_id"] for e in events] == [f"req-{n}" for n in range(len(writes))]
    assert all(e["actor_name"] == "Kemendagri operator" and e["actor_key_id"] for e in events)
    assert [e["after"] for e in events] == [a.json for a in answers]
    assert events[0]["before"] is None
    assert events[1]["before"] == {"code": "62", "name": "Kalimantan Tengah"}
    assert events[1]["after"] == {"code": "62", "name": "Kalteng"}
    assert dt.datetime.fromisoformat(events[0]["occurred_at"]).tzinfo is not None


def test_audit_events_filter_and_page(client, admin):
    for n in range(5):
        client.put(f"/v1/provinces/{60 + n}", json={"name": f"P{n}"}, headers=admin)
    client.put("/v1/national-targets/2016-01-01", json={"target_percent": 95}, headers=admin)
    only = audit_events(client, admin, resource="/v1/provinces/62")
    assert [e["resource"] for e in only] == ["/v1/provinces/62"]
    assert len(audit_events(client, admin, action="province.put")) == 5
    first = client.get("/v1/audit-events?limit=4", headers=admin)
    second = client.get(first.headers["Link"].split(">")[0].lstrip("<"), headers=admin)
    ids = [e["id"] for e in first.json["items"] + second.json["items"]]
    assert len(ids) == len(set(ids)) == 6


def test_audit_events_are_for_admins_only(client, reader, make_key):
    assert_problem(client.get("/v1/audit-events", headers=reader), 403, slug="forbidden")
    assert_problem(client.get("/v1/audit-events", headers=make_key("submitter", "62")), 403)
    assert_problem(client.get("/v1/audit-events"), 401)


def test_two_concurrent_creates_of_one_resource_answer_201_once_and_audit_once(app, db, admin, database_url):
    """A competing transaction holds the row uncommitted while two PUTs arrive; then it steps aside."""
    import threading
    import time

    from .scratch import connect

    blocker = connect(database_url)
    answers = []
    try:
        with blocker.cursor() as cur:
            cur.execute("INSERT INTO province (code, name) VALUES ('62', 'placeholder')")

        def put():
            answers.append(app.test_client().put("/v1/provinces/62", json={"name": "Kalimantan Tengah"},
                                                 headers=admin).status_code)

        threads = [threading.Thread(target=put) for _ in range(2)]
        for thread in threads:
            thread.start()
        waiting, deadline = 0, time.monotonic() + 20
        with connect(database_url) as watcher, watcher.cursor() as cur:
            while waiting < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
                cur.execute("SELECT count(*) AS n FROM pg_locks WHERE NOT granted")
                waiting = cur.fetchone()["n"]
        blocker.rollback()
        for thread in threads:
            thread.join(timeout=20)
    finally:
        blocker.close()
    assert waiting == 2
    assert sorted(answers) == [200, 201]
    with db, db.cursor() as cur:
        cur.execute("SELECT before, after FROM audit_event")
        assert cur.fetchall() == [{"before": None, "after": {"code": "62", "name": "Kalimantan Tengah"}}]


def test_every_get_with_an_etag_answers_304_to_a_matching_if_none_match(app, client, admin, kalteng):
    from .test_auth import v1_operations

    client.put("/v1/national-targets/2016-01-01", json={"target_percent": 95}, headers=admin)
    checked = []
    for method, rule, url, _ in v1_operations(app):
        if method != "GET":
            continue
        first = client.get(url, headers=admin)
        if first.status_code != 200 or "ETag" not in first.headers:
            continue
        again = client.get(url, headers={**admin, "If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304, rule
        assert again.data == b""
        checked.append(rule)
    assert {"/v1/provinces/<code>", "/v1/regencies/<code>"} <= set(checked)


@pytest.mark.parametrize("depth", [50, 900, 100_000])
def test_a_deeply_nested_body_is_a_client_error_and_stores_nothing(client, db, admin, depth):
    before = snapshot(db)
    raw = '{"name": ' + "[" * depth + "]" * depth + "}"
    response = client.put("/v1/provinces/62", data=raw, content_type="application/json", headers=admin)
    assert response.status_code in (400, 422), response.status_code
    assert response.mimetype == "application/problem+json"
    assert snapshot(db) == before


@pytest.mark.parametrize(("url", "first", "second"), [
    ("/v1/provinces/63", {"name": "Kalimantan Selatan"}, {"name": "Kalsel"}),
    ("/v1/regencies/62.10", {"name": "Gunung Mas", "kind": "kabupaten", "province_code": "62"},
     {"name": "Gunung Mas", "kind": "kota", "province_code": "62"}),
    ("/v1/regencies/62.09/eligible-population/2016-01-01", {"count": 5}, {"count": 6}),
    ("/v1/national-targets/2016-01-01", {"target_percent": 95}, {"target_percent": 90}),
])
def test_the_etag_of_a_write_answer_guards_the_next_write(client, db, admin, kalteng, url, first, second):
    created = client.put(url, json=first, headers=admin)
    assert created.status_code == 201
    changed = client.put(url, json=second, headers={**admin, "If-Match": created.headers["ETag"]})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != created.headers["ETag"]
    before = snapshot(db)
    lost_update = client.put(url, json=first, headers={**admin, "If-Match": created.headers["ETag"]})
    assert_problem(lost_update, 412)
    assert snapshot(db) == before
    # The stored state is still the second write's: its ETag still matches.
    assert client.put(url, json=second, headers={**admin, "If-Match": changed.headers["ETag"]}).status_code == 200
