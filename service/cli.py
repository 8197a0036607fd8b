"""ktpel-coverage: migrate, serve, demo, seed, imports and API keys."""
import os
import sys
from contextlib import contextmanager
from dataclasses import replace

import click
import psycopg2

from . import audit, embedded
from . import migrate as migrations
from .auth import ROLES, new_token, valid_scope
from .config import Settings
from .db import DictRowCursor
from .keys import queries as keys
from .regions.imports import ImportRejected, import_populations, import_regions, parse_populations, parse_regions
from .seed import seed_kalteng_2016

_embedded_servers = []  # kept referenced: the embedded server stops when its handle is collected


def resolve_settings(**overrides):
    """Settings from the environment; without DATABASE_URL, start the embedded server."""
    settings = Settings.from_environ(**overrides)
    if settings.database_url:
        return settings
    server, url = embedded.start(settings.embedded_data_dir)
    _embedded_servers.append(server)
    click.echo(f"Using the embedded PostgreSQL in {settings.embedded_data_dir}", err=True)
    return replace(settings, database_url=url)


@contextmanager
def connection(settings):
    try:
        conn = psycopg2.connect(settings.database_url, cursor_factory=DictRowCursor,
                                connect_timeout=settings.connect_timeout_seconds,
                                application_name="ktpel-coverage-cli")
    except psycopg2.OperationalError as exc:
        # The operator needs the server's reason, not a traceback.
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise click.ClickException(f"cannot connect to the database: {reason}") from exc
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def transaction(settings):
    """A transaction for a command, refused when the schema is not current."""
    with connection(settings) as conn:
        try:
            waiting = migrations.pending(conn)
        except migrations.MigrationError as exc:
            raise click.ClickException(str(exc)) from exc
        if waiting:
            raise click.ClickException("the database is not migrated; run 'ktpel-coverage migrate' first")
        with conn:
            yield conn


def _migrate(settings):
    with connection(settings) as conn:
        try:
            migrations.migrate(conn, log=lambda line: click.echo(line, err=True))
        except migrations.MigrationError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group()
def main():
    """KTP-El coverage service."""


@main.command()
def migrate():
    """Apply pending database migrations (safe to run from several instances at once)."""
    _migrate(resolve_settings())


@main.command()
def serve():
    """Serve the API with gunicorn (HOST, PORT, WEB_CONCURRENCY, ...)."""
    settings = resolve_settings()
    if _embedded_servers:
        _migrate(settings)  # a local embedded database is ours to keep current
    _serve(settings)


@main.command()
def demo():
    """Embedded database, Kalimantan Tengah 2016 data, public read, serve."""
    settings = resolve_settings(public_read=True)
    _migrate(settings)
    with transaction(settings) as conn:
        seed_kalteng_2016(conn)
    click.echo(f"Kalimantan Tengah 2016 loaded; serving on http://{settings.host}:{settings.port}", err=True)
    _serve(settings)


def _serve(settings):
    from .server import run

    os.environ["DATABASE_URL"] = settings.database_url  # the workers build their app from the environment
    os.environ["PUBLIC_READ"] = "true" if settings.public_read else "false"
    run(settings)


@main.group()
def seed():
    """Load demo data."""


@seed.command("kalteng-2016")
def seed_kalteng():
    """Kalimantan Tengah, June 2016: the province, 14 regencies, eligible populations, the target."""
    settings = resolve_settings()
    with transaction(settings) as conn:
        counts = seed_kalteng_2016(conn)
    click.echo(_counts_line(counts))


def _counts_line(counts):
    return ", ".join(f"{counts[k]} {k}" for k in ("created", "updated", "unchanged"))


@main.group()
def regions():
    """The registry of provinces and regencies."""


@regions.command("import")
@click.option("--provinces", "provinces_file", type=click.File(encoding="utf-8-sig"), required=True,
              help="CSV with header code,name")
@click.option("--regencies", "regencies_file", type=click.File(encoding="utf-8-sig"), required=True,
              help="CSV with header code,name,kind,province_code")
def regions_import(provinces_file, regencies_file):
    """Create or update provinces and regencies from CSV; a bad line rejects the whole import."""
    try:
        provinces, regencies = parse_regions(_text_of(provinces_file), _text_of(regencies_file),
                                             provinces_name=provinces_file.name, regencies_name=regencies_file.name)
        settings = resolve_settings()
        with transaction(settings) as conn:
            counts = import_regions(conn, provinces, regencies)
    except ImportRejected as exc:
        _reject(exc)
    click.echo(_counts_line(counts))


@main.group()
def population():
    """Eligible populations (wajib KTP) of the regencies."""


@population.command("import")
@click.argument("population_file", type=click.File(encoding="utf-8-sig"))
def population_import(population_file):
    """Create or update eligible populations from CSV regency_code,effective_from,count,source."""
    try:
        rows = parse_populations(_text_of(population_file), filename=population_file.name)
        settings = resolve_settings()
        with transaction(settings) as conn:
            counts = import_populations(conn, rows, filename=population_file.name)
    except ImportRejected as exc:
        _reject(exc)
    click.echo(_counts_line(counts))


def _text_of(file):
    try:
        return file.read()
    except UnicodeDecodeError as exc:
        raise ImportRejected([f"{file.name}: not UTF-8 text (byte {exc.start} cannot be read)"]) from exc


def _reject(exc):
    for problem in exc.problems:
        click.echo(problem, err=True)
    raise click.ClickException(f"{len(exc.problems)} problem(s); nothing was stored")


@main.group("keys")
def keys_group():
    """API keys."""


@keys_group.command("create")
@click.option("--name", required=True, help="Who the key is for, e.g. 'Disdukcapil Lamandau'")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--scope", "scopes", multiple=True, help="Province (NN) or regency (NN.NN) code; repeatable")
def keys_create(name, role, scopes):
    """Create a key and print its token, alone, on standard output: it is shown only once."""
    if not 1 <= len(name.strip()) <= 200:
        raise click.BadParameter("give a name of 1 to 200 characters", param_hint="--name")
    bad = [s for s in scopes if not valid_scope(s)]
    if bad:
        raise click.BadParameter(f"not a province or regency code: {', '.join(bad)}", param_hint="--scope")
    if role == "submitter" and not scopes:
        raise click.BadParameter("a submitter needs at least one scope", param_hint="--scope")
    if role != "submitter" and scopes:
        raise click.BadParameter("only a submitter has a scope", param_hint="--scope")
    settings = resolve_settings()
    key_id, token, token_hash = new_token()
    with transaction(settings) as conn:
        row = keys.create_key(conn, key_id=key_id, name=name.strip(), role=role, scopes=scopes, token_hash=token_hash)
        audit.record(conn, action="api_key.create", resource=f"api-keys/{key_id}",
                     after={k: row[k] for k in ("id", "name", "role", "scopes")})
    click.echo(f"created key {key_id} ({role})", err=True)
    click.echo(token)


@keys_group.command("list")
def keys_list():
    """List keys (never their tokens)."""
    settings = resolve_settings()
    with transaction(settings) as conn:
        rows = keys.list_keys(conn)
    for row in rows:
        state = "revoked " + row["revoked_at"].isoformat() if row["revoked_at"] else "active"
        click.echo(f"{row['id']}\t{row['role']}\t{','.join(row['scopes']) or '-'}\t{state}\t{row['name']}")


@keys_group.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id):
    """Revoke a key: it stops working at once."""
    settings = resolve_settings()
    with transaction(settings) as conn:
        row = keys.revoke_key(conn, key_id=key_id)
        if row is None:
            raise click.ClickException(f"there is no key {key_id}")
        audit.record(conn, action="api_key.revoke", resource=f"api-keys/{key_id}",
                     after={"id": key_id, "revoked_at": row["revoked_at"]})
    click.echo(f"revoked {key_id}")


if __name__ == "__main__":
    sys.exit(main())
