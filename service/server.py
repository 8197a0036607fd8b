"""gunicorn as the service runs it, configured from the same Settings."""
from gunicorn.app.base import BaseApplication


class CoverageServer(BaseApplication):
    def __init__(self, settings):
        self.settings = settings
        super().__init__()

    def load_config(self):
        s = self.settings
        options = {
            "bind": f"{s.host}:{s.port}",
            "workers": s.web_concurrency,
            "worker_class": "gthread",
            "threads": s.threads,
            "timeout": 30,
            "graceful_timeout": 20,
            "keepalive": 5,
            "max_requests": 10_000,
            "max_requests_jitter": 1_000,
            "loglevel": s.log_level.lower(),
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self):
        from . import create_app

        return create_app()


def run(settings):
    CoverageServer(settings).run()
