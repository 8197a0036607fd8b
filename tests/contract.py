"""A test client that holds every answer to openapi.yaml: a response the spec does not allow fails the test."""
import json
from functools import cache
from pathlib import Path

from flask.testing import FlaskClient
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.templating.responses.exceptions import ResponseNotFound

SPEC = Path(__file__).resolve().parent.parent / "openapi.yaml"


@cache
def spec():
    # Without this deserializer openapi-core would hold a problem body as bytes and check nothing in it.
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    return OpenAPI.from_file_path(str(SPEC), config=config)


class ContractClient(FlaskClient):
    def open(self, *args, **kwargs):
        kwargs.setdefault("base_url", "http://127.0.0.1:8000")  # the server the spec names
        response = super().open(*args, **kwargs)
        check_response(response)
        return response


class _AnsweredRequest(WerkzeugOpenAPIRequest):
    """The request as the response names it; its body was read by the view, and a response check needs none."""

    @property
    def body(self):
        return b""


def check_response(response):
    if response.request.method in ("HEAD", "OPTIONS"):
        return  # answered by Flask from the GET route; the GET is what the spec describes
    request = _AnsweredRequest(response.request)
    try:
        spec().validate_response(request, WerkzeugOpenAPIResponse(response))
    except OperationNotFound:
        if response.status_code != 405:
            raise
    except ResponseNotFound:
        # openapi-core matches /v1/submissions/batch to /v1/submissions/{submission_id} without
        # looking at the parameter's pattern; the method is not allowed there, which is all 405 says.
        if response.status_code != 405:
            raise
    except PathNotFound:
        # Unknown paths are the 404 tests; that every route is in the spec is tested on its own.
        if response.status_code not in (404, 405):
            raise
