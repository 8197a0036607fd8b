"""Who may call what: the matrix is generated from the app's own route table, so no endpoint escapes it."""
import datetime as dt
import re

import pytest

from service.auth import ROLES, new_token
from service.keys import queries as keys
from service.regions import queries as regions
from service.submissions import queries as submissions
from service.targets import queries as targets

from .conftest import count_rows

# A sample value for every path variable a /v1 route may have; a new variable needs one here.
PATH_SAMPLES = {
    "effective_from": "2016-01-01",
    "id": "1",
    "submission_id": "1",
}
# Path variables named `code` take a province or a regency code, depending on the path.
CODE_SAMPLES = {"/v1/provinces/": "62", "/v1/regencies/": "62.09"}

# For each route that needs the submitter role: a request (json body) that names a regency outside the
# scope of a submitter scoped to province 11, and the status it must get (a batch lists bad items: 422).
OUT_OF_SCOPE_PROBES = {
    ("POST", "/v1/submissions"): ({"regency_code": "62.09", "as_of": "2016-06-30", "recorded": 1}, 403),
    ("POST", "/v1/submissions/batch"): (
        {"items": [{"regency_code": "62.09", "as_of": "2016-06-30", "recorded": 1}]}, 422),
    # PATH_SAMPLES' submission 1 is the registry fixture's, in 62.09
    ("POST", "/v1/submissions/<int:submission_id>/retract"): ({"reason": "counted twice"}, 403),
}

METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH")
_RANK = {role: rank for rank, role in enumerate(ROLES)}


def _concrete(rule):
    def sample(match):
        name = match.group(1)
        if name == "code":
            for prefix, value in CODE_SAMPLES.items():
                if rule.startswith(prefix):
                    return value
        assert name in PATH_SAMPLES, f"{rule}: give the path variable <{name}> a sample in PATH_SAMPLES"
        return PATH_SAMPLES[name]

    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", sample, rule)


def v1_operations(app):
    """(method, rule, url, required_role) for every /v1 route of the app."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v1/"):
            continue
        view = app.view_functions[rule.endpoint]
        for method in sorted(set(rule.methods) & set(METHODS)):
            found.append((method, rule.rule, _concrete(rule.rule), getattr(view, "required_role", None)))
    return found


@pytest.fixture
def registry(db):
    """Province 62, regency 62.09 and a submission there, so that routes with a path find something."""
    with db:
        regions.put_province(db, code="62", name="Kalimantan Tengah")
        regions.put_province(db, code="11", name="Aceh")
        regions.put_regency(db, code="62.09", name="Lamandau", kind="kabupaten", province_code="62")
        regions.put_eligible_population(db, regency_code="62.09", effective_from=dt.date(2016, 1, 1),
                                        count=67870, source=None)
        targets.put_target(db, effective_from=dt.date(2016, 1, 1), target_percent=95, note=None)
        submissions.insert_loaded_counts(db, rows=[("62.09", dt.date(2016, 6, 30), 60000)])
    with db, db.cursor() as cur:
        cur.execute("SELECT id FROM submission")
        assert [row["id"] for row in cur.fetchall()] == [int(PATH_SAMPLES["submission_id"])]


def every_row_count(db):
    """Rows in every table: a refused request must leave them all as they were."""
    with db, db.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migration'")
        tables = sorted(row["tablename"] for row in cur.fetchall())
    return {table: count_rows(db, table) for table in tables}


def _call(client, method, url, headers=None, json=None):
    return client.open(url, method=method, headers=headers or {}, json=json)


def test_every_v1_route_declares_the_role_it_needs(app):
    operations = v1_operations(app)
    assert operations, "the app has no /v1 routes?"
    undeclared = [(m, r) for m, r, _, role in operations if role not in ROLES]
    assert not undeclared, f"routes without @requires(role): {undeclared}"
    readers_writing = [(m, r) for m, r, _, role in operations if m != "GET" and role == "reader"]
    assert not readers_writing, f"writes open to the reader role: {readers_writing}"


def test_every_submitter_route_has_an_out_of_scope_probe(app):
    missing = [(m, r) for m, r, _, role in v1_operations(app)
               if role == "submitter" and (m, r) not in OUT_OF_SCOPE_PROBES]
    assert not missing, f"add an OUT_OF_SCOPE_PROBES entry for {missing}"


def test_no_token_is_401_with_a_bearer_challenge_on_every_route(app, client, db, registry):
    stored = every_row_count(db)
    for method, rule, url, _ in v1_operations(app):
        response = _call(client, method, url)
        assert response.status_code == 401, (method, rule)
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), (method, rule)
        assert response.mimetype == "application/problem+json"
        assert response.json["status"] == 401
    assert every_row_count(db) == stored


@pytest.mark.parametrize("authorization", [
    "Bearer ktpel_abcdefgh_" + "x" * 43,  # well formed, no such key
    "Bearer not-a-token",
    "Basic dXNlcjpwYXNz",
    "Bearer ",
])
def test_unknown_token_is_401_on_every_route(app, client, registry, authorization):
    for method, rule, url, _ in v1_operations(app):
        response = _call(client, method, url, headers={"Authorization": authorization})
        assert response.status_code == 401, (method, rule)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_of_a_known_key_with_a_wrong_secret_is_401(client, make_key, registry):
    token = make_key("admin")["Authorization"].split()[1]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = client.get("/v1/provinces", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


def test_revoked_key_is_401_on_every_route(app, client, db, admin, registry):
    key_id = admin["Authorization"].split()[1].split("_")[1]
    assert client.get("/v1/provinces", headers=admin).status_code == 200
    with db, db.cursor():
        assert keys.revoke_key(db, key_id=key_id) is not None
    for method, rule, url, _ in v1_operations(app):
        assert _call(client, method, url, headers=admin).status_code == 401, (method, rule)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_allowed_exactly_what_its_rank_allows(app, client, db, make_key, registry, role):
    headers = make_key(role, *(("11",) if role == "submitter" else ()))
    stored = every_row_count(db)
    for method, rule, url, required in v1_operations(app):
        response = _call(client, method, url, headers=headers)
        if _RANK[role] >= _RANK[required]:
            assert response.status_code not in (401, 403), (role, method, rule, response.json)
        else:
            assert response.status_code == 403, (role, method, rule)
            assert response.json["type"] == "urn:ktpel-coverage:problem:forbidden"
    # Allowed writes were sent without a body, so they too must have stored nothing.
    assert every_row_count(db) == stored


def test_submitter_out_of_scope_is_refused_and_stores_nothing(app, client, db, make_key, registry):
    submitter = make_key("submitter", "11")
    for method, rule, url, required in v1_operations(app):
        if required != "submitter":
            continue
        stored = {table: count_rows(db, table) for table in ("submission", "audit_event")}
        body, status = OUT_OF_SCOPE_PROBES[(method, rule)]
        response = _call(client, method, url, headers=submitter, json=body)
        assert response.status_code == status, (method, rule, response.json)
        assert "62.09" in response.get_data(as_text=True), (method, rule, response.json)
        assert {table: count_rows(db, table) for table in stored} == stored
        with db, db.cursor() as cur:
            cur.execute("SELECT count(*) AS n FROM submission WHERE retracted_at IS NOT NULL")
            assert cur.fetchone()["n"] == 0


def test_submitter_scope_covers_its_province_and_its_regencies():
    from service.auth import ApiKey

    by_province = ApiKey(id="k", name="n", role="submitter", scopes=("62",))
    by_regency = ApiKey(id="k", name="n", role="submitter", scopes=("62.09",))
    assert by_province.covers("62.09") and by_province.covers("62.71")
    assert not by_province.covers("11.01")
    assert by_regency.covers("62.09") and not by_regency.covers("62.71")
    assert not ApiKey(id="k", name="n", role="reader").covers("62.09")
    assert ApiKey(id="k", name="n", role="admin").covers("11.01")


def test_public_read_lets_gets_through_without_a_token_but_not_writes(make_app, registry):
    client = make_app(public_read=True).test_client()
    app = client.application
    for method, rule, url, required in v1_operations(app):
        response = _call(client, method, url)
        if method == "GET" and required == "reader":
            assert response.status_code not in (401, 403), (method, rule)
        else:
            assert response.status_code == 401, (method, rule)


def test_public_read_never_opens_the_audit_trail(make_app, registry, admin):
    client = make_app(public_read=True).test_client()
    client.put("/v1/provinces/63", json={"name": "Kalimantan Selatan"}, headers=admin)
    for method in ("GET", "HEAD"):
        response = client.open("/v1/audit-events", method=method)
        assert response.status_code == 401, method
        assert b"Kalimantan Selatan" not in response.data


def test_public_read_still_refuses_an_unknown_token(make_app, registry):
    client = make_app(public_read=True).test_client()
    response = client.get("/v1/provinces", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 401


def test_token_is_stored_only_as_a_hash(db):
    key_id, token, token_hash = new_token()
    with db, db.cursor():
        keys.create_key(db, key_id=key_id, name="hash check", role="reader", scopes=(), token_hash=token_hash)
    secret = token.split("_", 2)[2]
    with db, db.cursor() as cur:
        cur.execute("SELECT * FROM api_key WHERE id = %(id)s", {"id": key_id})
        row = cur.fetchone()
    stored = " ".join(str(value) for value in row.values())
    assert secret not in stored and token not in stored
    assert row["token_hash"] != secret


def test_two_tokens_are_never_the_same():
    tokens = {new_token()[1] for _ in range(200)}
    assert len(tokens) == 200
