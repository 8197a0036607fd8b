"""A small world for the submission tests: Kalimantan Tengah and one regency of another province."""
import datetime as dt

from service.regions import queries as regions

LAMANDAU, PALANGKA_RAYA, SERUYAN, MURUNG_RAYA = "62.09", "62.71", "62.07", "62.12"
KAPUAS_HULU = "61.06"  # Kalimantan Barat: outside a "62" scope
ELIGIBLE = {LAMANDAU: 67_870, PALANGKA_RAYA: 187_204, SERUYAN: 120_000, KAPUAS_HULU: 180_000}
POPULATION_FROM = dt.date(2016, 1, 1)


def load_world(conn):
    with conn, conn.cursor():
        regions.put_province(conn, code="62", name="Kalimantan Tengah")
        regions.put_province(conn, code="61", name="Kalimantan Barat")
        for code, name, kind in [
            (LAMANDAU, "Lamandau", "kabupaten"), (PALANGKA_RAYA, "Palangka Raya", "kota"),
            (SERUYAN, "Seruyan", "kabupaten"), (MURUNG_RAYA, "Murung Raya", "kabupaten"),
            (KAPUAS_HULU, "Kapuas Hulu", "kabupaten"),
        ]:
            regions.put_regency(conn, code=code, name=name, kind=kind, province_code=code[:2])
        for code, count in ELIGIBLE.items():  # Murung Raya has none
            regions.put_eligible_population(conn, regency_code=code, effective_from=POPULATION_FROM,
                                            count=count, source="test")


def feed_ids(client, headers, **params):
    """Every (id, change) the feed holds, following next_cursor with a small page."""
    seen, cursor = [], None
    while True:
        query = {"limit": 2, **params, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/submissions", query_string=query, headers=headers).get_json()
        seen += [(item["id"], item["change"]) for item in page["items"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return seen
