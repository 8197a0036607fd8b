"""A request without query parameters gets what its schema loads from nothing, with or without marshmallow.

web.load_query fills in the fields' defaults itself when loading nothing would run nothing else; these
tests hold that to what marshmallow's own load gives, for every query schema of the service.
"""
import importlib
import pkgutil

import pytest
from flask import Flask
from marshmallow import Schema, ValidationError, fields, post_load

import service
from service import web
from service.clock import today
from service.coverage.schemas import HistoryQuery, ProvinceCoverageQuery

from .coverage_world import put_province, put_regency


def _service_schemas():
    for module in pkgutil.walk_packages(service.__path__, "service."):
        importlib.import_module(module.name)
    found, stack = [], list(Schema.__subclasses__())
    while stack:
        schema = stack.pop()
        stack.extend(schema.__subclasses__())
        if schema.__module__.startswith("service."):  # not this module's own
            found.append(schema)
    return sorted(found, key=lambda schema: (schema.__module__, schema.__name__))


SCHEMAS = _service_schemas()


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda schema: f"{schema.__module__}.{schema.__name__}")
def test_no_parameters_load_as_marshmallow_loads_nothing(schema):
    try:
        expected = schema().load({})
    except ValidationError:
        expected = None  # a required parameter: 422, from marshmallow's load
    with Flask(__name__).test_request_context("/"):
        try:
            loaded = web.load_query(schema)
        except web.ApiError:  # 422 naming the parameter
            loaded = None

    assert loaded == expected


class _Doubled(Schema):
    """Defaults alone, and a hook that must still run on them."""

    times = fields.Integer(load_default=2)

    @post_load
    def doubled(self, data, **kwargs):
        return {"times": data["times"] * 2}


def test_a_schema_with_a_hook_is_loaded_by_marshmallow_even_from_nothing():
    with Flask(__name__).test_request_context("/"):
        assert web.load_query(_Doubled) == {"times": 4}
    assert web._defaults_alone(web._schema(_Doubled)) is None


def test_the_schemas_are_found_and_only_plain_ones_skip_marshmallow():
    assert len(SCHEMAS) >= 8
    assert web._defaults_alone(web._schema(ProvinceCoverageQuery)) == (("as_of", today), ("sort", "code"))
    assert web._defaults_alone(web._schema(HistoryQuery)) is None  # `from` is required, and a validator runs


@pytest.mark.parametrize(("bare", "spelled_out"), [
    ("/v1/provinces/62/coverage", "/v1/provinces/62/coverage?as_of={today}&sort=code"),
    ("/v1/coverage", "/v1/coverage?as_of={today}"),
    ("/v1/regencies/62.09/coverage", "/v1/regencies/62.09/coverage?as_of={today}"),
])
def test_an_answer_without_parameters_is_the_answer_with_their_defaults(db, client, reader, bare, spelled_out):
    put_province(db, "62", "Kalimantan Tengah")
    put_regency(db, "62.09", name="Lamandau")
    without = client.get(bare, headers=reader)
    with_them = client.get(spelled_out.format(today=today().isoformat()), headers=reader)

    assert without.status_code == with_them.status_code == 200
    assert without.headers["ETag"] == with_them.headers["ETag"]
