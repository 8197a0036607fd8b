"""A test client that holds every answer to openapi.yaml: a response the spec does not allow fails the test."""
from functools import cache
from pathlib import Path

from flask.testing import FlaskClient
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.deserializing.media_types.util import json_loads
from openapi_core.templating.paths.exceptions import PathNotFound

SPEC = Path(__file__).resolve().parent.parent / "openapi.yaml"


@cache
def spec():
    # problem+json is JSON too; without this openapi-core checks the raw bytes against the schema
    config = Config(extra_media_type_deserializers={"application/problem+json": json_loads})
    return OpenAPI.from_file_path(str(SPEC), config=config)


class ContractClient(FlaskClient):
    def open(self, *args, **kwargs):
        kwargs.setdefault("base_url", "http://127.0.0.1:8000")  # the server the spec names
        response = super().open(*args, **kwargs)
        check_response(response)
        return response


def check_response(response):
    body = response.request.environ.get("wsgi.input")
    if body is not None and hasattr(body, "seek"):
        body.seek(0)  # the app has read the request body; openapi-core reads it again
    request = WerkzeugOpenAPIRequest(response.request)
    try:
        spec().validate_response(request, WerkzeugOpenAPIResponse(response))
    except PathNotFound:
        # Unknown paths are the 404 tests; that every route is in the spec is tested on its own.
        if response.status_code not in (404, 405):
            raise
