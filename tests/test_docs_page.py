"""/docs renders openapi.yaml in a browser, from assets the service serves itself, under a strict CSP."""
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser

import pytest
import yaml

from .contract import SPEC
from .gunicorn_process import Served

CHROMIUM = shutil.which("chromium")
METHODS = {"get", "put", "post", "delete", "patch"}


def spec_operations():
    spec = yaml.safe_load(SPEC.read_text())
    return [op for item in spec["paths"].values() for method, op in item.items() if method in METHODS]


class PageReferences(HTMLParser):
    """Every URL the page loads, and the text of any inline script."""

    def __init__(self):
        super().__init__()
        self.urls = []
        self.inline_scripts = []
        self._in_inline_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            if "src" in attrs:
                self.urls.append(attrs["src"])
            else:
                self._in_inline_script = True
                self.inline_scripts.append("")
        elif tag == "link":
            self.urls.append(attrs["href"])
        elif "data-spec-url" in attrs:
            self.urls.append(attrs["data-spec-url"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_inline_script = False

    def handle_data(self, data):
        if self._in_inline_script:
            self.inline_scripts[-1] += data


def csp_directives(header):
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def test_docs_page_loads_every_asset_from_the_service_itself(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    refs = PageReferences()
    refs.feed(page.get_data(as_text=True))
    assert len(refs.urls) >= 4
    for url in refs.urls:
        assert url.startswith("/") and not url.startswith("//"), f"{url} is not served by this service"
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.data) > 0, url


def test_docs_page_has_no_inline_script_and_a_same_origin_policy(client):
    page = client.get("/docs")
    refs = PageReferences()
    refs.feed(page.get_data(as_text=True))
    assert refs.inline_scripts == []
    policy = csp_directives(page.headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert not any("unsafe" in source or "*" in source or "http" in source
                   for sources in policy.values() for source in sources)


def test_docs_assets_carry_the_same_policy_and_a_cache_lifetime(client):
    asset = client.get("/docs/assets/swagger-ui-bundle.js")
    assert asset.headers["Content-Security-Policy"] == client.get("/docs").headers["Content-Security-Policy"]
    assert re.fullmatch(r"public, max-age=\d+", asset.headers["Cache-Control"])


@pytest.mark.parametrize("name", ["index.template.html", "..%2F..%2Fsetup.cfg", "oauth2-redirect.html", "VERSION"])
def test_only_the_listed_docs_assets_are_served(client, name):
    response = client.get(f"/docs/assets/{name}")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_spec_lists_exactly_the_docs_assets_served():
    from service.docs.routes import ASSET_DIRECTORIES

    spec = yaml.safe_load(SPEC.read_text())
    (name,) = spec["paths"]["/docs/assets/{name}"]["get"]["parameters"]
    assert set(name["schema"]["enum"]) == set(ASSET_DIRECTORIES)


def render_in_chromium(url):
    """The DOM after the page's scripts ran, and the browser's console lines (CSP violations land there)."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--enable-logging=stderr", "--log-level=0",
             "--virtual-time-budget=15000", "--dump-dom", url],
            capture_output=True, text=True, timeout=120,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; .ci/run does)")
def test_docs_page_shows_every_operation_in_headless_chromium(database_url):
    with Served(database_url, workers=1) as served:
        base_url = served.url
        dom, console = render_in_chromium(base_url + "/docs")
    operations = spec_operations()
    assert len(operations) >= 10
    shown_ids = set(re.findall(r'href="#/[^/"]+/([A-Za-z0-9_]+)"', dom))
    assert shown_ids == {op["operationId"] for op in operations}
    shown_summaries = set(re.findall(r'class="opblock-summary-description">([^<]*)<', dom))
    for op in operations:
        assert op["summary"].replace("&", "&amp;") in shown_summaries, op["operationId"]
    assert not [line for line in console if "Content Security Policy" in line], console
    # "Try it out" goes to the first server: this service itself, the one origin the page's CSP lets it call.
    assert re.search(r'<select id="servers"><option value="/">', dom)
