"""openapi.yaml is the contract: every route is in it, and every path in it is a route."""
import re

import yaml

from .contract import SPEC

IGNORED_RULES = {"/static/<path:filename>"}
METHODS = {"get", "put", "post", "delete", "patch"}


def spec_operations():
    spec = yaml.safe_load(SPEC.read_text())
    return {(path, method) for path, item in spec["paths"].items() for method in item if method in METHODS}


def app_operations(app):
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule in IGNORED_RULES:
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        found |= {(path, m.lower()) for m in rule.methods if m.lower() in METHODS}
    return found


def test_every_route_is_in_the_spec(app):
    missing = app_operations(app) - spec_operations()
    assert not missing, f"routes missing from openapi.yaml: {sorted(missing)}"


def test_every_spec_operation_is_a_route(app):
    extra = spec_operations() - app_operations(app)
    assert not extra, f"openapi.yaml describes operations the app lacks: {sorted(extra)}"


def test_spec_is_valid_openapi_3_1():
    from openapi_spec_validator import validate

    spec = yaml.safe_load(SPEC.read_text())
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_service_serves_its_spec(client):
    response = client.get("/openapi.yaml")
    assert response.status_code == 200
    assert response.data == SPEC.read_bytes()
