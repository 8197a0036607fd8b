"""The browsable documentation: one page and its assets, all from this service."""
from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, make_response, render_template, send_from_directory

from ..errors import NotFound

blueprint = Blueprint("docs", __name__, template_folder="templates")

OWN_ASSETS = Path(__file__).resolve().parent / "assets"
# The Swagger UI distribution that the flask-swagger-ui package ships; only its static files are used.
SWAGGER_UI_DIST = Path(flask_swagger_ui.__file__).resolve().parent / "dist"
ASSET_DIRECTORIES = {
    "docs.js": OWN_ASSETS,
    "docs.css": OWN_ASSETS,
    "swagger-ui-bundle.js": SWAGGER_UI_DIST,
    "swagger-ui.css": SWAGGER_UI_DIST,
    "favicon-32x32.png": SWAGGER_UI_DIST,
    "favicon-16x16.png": SWAGGER_UI_DIST,
}
ASSET_MAX_AGE_SECONDS = 3600

# Swagger UI needs nothing from elsewhere: scripts and styles from here, its icons as data: URIs,
# and "Try it out" calls only this service. No inline script; React sets styles through the DOM API.
DOCS_CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
))


@blueprint.get("/docs")
def docs_page():
    response = make_response(render_template("docs.html"))
    response.headers["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
    return response


@blueprint.get("/docs/assets/<name>")
def docs_asset(name):
    directory = ASSET_DIRECTORIES.get(name)
    if directory is None:
        raise NotFound(f"The documentation has no asset {name}.")
    response = send_from_directory(directory, name, max_age=ASSET_MAX_AGE_SECONDS)
    response.headers["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
    return response
