"""Settings, read from the environment only."""
import os
from dataclasses import dataclass, fields, replace


def _bool(value):
    return str(value).strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    database_read_url: str | None = None
    embedded_data_dir: str = ".pgdata"
    host: str = "127.0.0.1"
    port: int = 8000
    # gunicorn: see the README (Settings, Worker model) for why gthread and these defaults
    web_concurrency: int = 4
    threads: int = 4
    worker_class: str = "gthread"
    worker_timeout_seconds: int = 30
    graceful_timeout_seconds: int = 20
    keepalive_seconds: int = 5
    max_requests: int = 100_000
    max_requests_jitter: int = 10_000
    # behind a proxy: gunicorn trusts X-Forwarded-Proto from these addresses; ProxyFix trusts
    # X-Forwarded-For/-Proto/-Host/-Prefix from this many proxies in front (0: not behind one)
    forwarded_allow_ips: str = "127.0.0.1,::1"
    proxy_fix_hops: int = 0
    public_read: bool = False
    stale_after_days: int = 31
    log_level: str = "INFO"
    pool_max: int = 8
    pool_timeout_seconds: float = 5.0
    connect_timeout_seconds: int = 3
    statement_timeout_ms: int = 10_000
    max_body_bytes: int = 1024 * 1024
    max_batch_body_bytes: int = 16 * 1024 * 1024

    @classmethod
    def from_environ(cls, environ=None, **overrides):
        environ = os.environ if environ is None else environ
        values = {}
        for field in fields(cls):
            raw = environ.get(field.name.upper())
            if raw is None or raw == "":
                continue
            if field.type is bool:
                values[field.name] = _bool(raw)
            elif field.type is int:
                values[field.name] = int(raw)
            elif field.type is float:
                values[field.name] = float(raw)
            else:
                values[field.name] = raw
        return replace(cls(**values), **overrides)
