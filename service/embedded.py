"""The embedded PostgreSQL used when no DATABASE_URL is given (pgserver ships the binaries)."""
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def start(data_dir):
    """Start (or join) the server in data_dir and return its URL; it stops when the last user exits."""
    try:
        import pgserver  # imported here: only needed without DATABASE_URL
    except ImportError as exc:
        raise RuntimeError(
            "DATABASE_URL is not set and the embedded PostgreSQL is not installed "
            "(pip install 'ktpel-coverage[embedded]')"
        ) from exc

    path = Path(data_dir).resolve()
    path.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(path, cleanup_mode="stop")
    log.info("embedded PostgreSQL in %s", path)
    return server, server.get_uri()
