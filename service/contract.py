"""The contract as served: openapi.yaml and its browsable documentation."""
from pathlib import Path

from flask import Blueprint, current_app

blueprint = Blueprint("contract", __name__)

SPEC_PATH = Path(__file__).resolve().parent / "openapi.yaml"


@blueprint.get("/openapi.yaml")
def openapi_yaml():
    return current_app.response_class(SPEC_PATH.read_bytes(), mimetype="application/yaml")
