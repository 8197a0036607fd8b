"""Instructions per request: the service's own Python counted by valgrind, not timed.

Time on a shared VM swings by a fifth between runs minutes apart; the instructions one process
executes for the same requests do not. So a change to the service's own code is measured here
first: the app (create_app, as gunicorn loads it) is called in one process with WSGI environs
made by hand, against a scratch database holding the smoke dataset (province 62, 30 days), and
run twice under `valgrind --tool=callgrind` with N and with M requests of one scenario after the
same warm-up. (total(N) - total(M)) / (N - M) is what one request costs; start-up, imports and
warm-up cancel out. PostgreSQL's work is in its own processes and is not counted; gunicorn's
HTTP parsing is not either (the app is called as gunicorn calls it). province-public is the
province answer with PUBLIC_READ on and no key sent: beside province, what checking the key
costs the worker (PostgreSQL's part of it is not counted).

    python -m bench.instructions                        # every scenario; 1-2 minutes each
    python -m bench.instructions --only province --profile   # also cProfile's top functions

The figures repeat within about 0.5% on one machine; compare them between commits run on the
same one (a `git worktree` of the other commit, the same command in it).
"""
import argparse
import cProfile
import datetime as dt
import gc
import io
import json
import os
import pstats
import re
import shutil
import subprocess
import sys

from service import create_app
from service.clock import today
from service.config import Settings

from . import dataset, queries

WARM_UP = 300
SCENARIOS = ("healthz", "registry", "province", "province-public", "regency", "nation", "submission")


class Requests:
    """The WSGI environs of one scenario, a new one each call (a POST gets a new count)."""

    def __init__(self, scenario, *, reader, submitter, regency):
        self.scenario = scenario
        self.reader = reader
        self.submitter = submitter
        self.regency = regency
        self.n = 0

    def environ(self):
        self.n += 1
        if self.scenario == "healthz":
            return _environ("GET", "/healthz")
        if self.scenario == "registry":
            return _environ("GET", f"/v1/regencies/{self.regency}", token=self.reader)
        if self.scenario in ("province", "province-public"):
            token = None if self.scenario == "province-public" else self.reader  # PUBLIC_READ: no key sent
            return _environ("GET", f"/v1/provinces/{self.regency[:2]}/coverage", token=token)
        if self.scenario == "regency":
            return _environ("GET", f"/v1/regencies/{self.regency}/coverage", token=self.reader)
        if self.scenario == "nation":
            return _environ("GET", "/v1/coverage", token=self.reader)
        body = json.dumps({
            "regency_code": self.regency, "as_of": today().isoformat(),
            "recorded": 10_000_000 + self.n, "reference": f"instructions-{os.getpid()}-{self.n}",
        }).encode()
        return _environ("POST", "/v1/submissions", token=self.submitter, body=body)


def _environ(method, path, *, token=None, body=b""):
    environ = {
        "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000", "HTTP_USER_AGENT": "bench.instructions",
        "HTTP_ACCEPT": "*/*", "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }
    if token:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    if body:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def _call(app, environ):
    status = []
    body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    if not status[0].startswith(("200", "201")):
        raise SystemExit(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}: {status[0]} {body[:300]!r}")


def _child(args):
    """One process: warm up, then `--requests` requests (the part valgrind's difference keeps)."""
    import logging
    logging.disable(logging.CRITICAL)  # the log line is still built; only its write to stderr is not counted
    app = create_app(Settings(database_url=args.database_url, pool_max=2,
                              public_read=args.scenario == "province-public"))
    requests = Requests(args.scenario, reader=args.reader, submitter=args.submitter, regency=args.regency)
    for _ in range(WARM_UP):
        _call(app, requests.environ())
    environs = [requests.environ() for _ in range(args.requests)]
    gc.collect()
    gc.freeze()
    profile = cProfile.Profile() if args.cprofile else None
    if profile:
        profile.enable()
    for environ in environs:
        _call(app, environ)
    if profile:
        profile.disable()
        stats = pstats.Stats(profile, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(25)


def _collected(args, scenario, requests):
    """The instructions valgrind counted in a child process making `requests` requests."""
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-m", "bench.instructions",
        "--child", scenario, "--requests", str(requests), "--database-url", args.database_url,
        "--reader", args.reader, "--submitter", args.submitter, "--regency", args.regency,
    ]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"valgrind failed for {scenario}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated scenarios: " + ", ".join(SCENARIOS))
    parser.add_argument("--requests", type=int, default=600, help="requests in the longer run (default 600)")
    parser.add_argument("--baseline", type=int, default=100, help="requests in the shorter run (default 100)")
    parser.add_argument("--profile", action="store_true", help="also cProfile's top functions of each scenario")
    parser.add_argument("--child", metavar="SCENARIO", help=argparse.SUPPRESS)
    parser.add_argument("--cprofile", action="store_true", help=argparse.SUPPRESS)
    for name in ("--database-url", "--reader", "--submitter", "--regency"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.scenario = args.child
        _child(args)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: apt-get install valgrind")
    scenarios = args.only.split(",") if args.only else SCENARIOS
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    with dataset.scratch_database() as url:
        dataset.load(url, dataset.Plan.smoke(), log=lambda line: None)
        args.database_url = url
        args.regency = _first_regency(url)
        args.reader = dataset.create_key(url, "reader")
        args.submitter = dataset.create_key(url, "submitter", scopes=[args.regency[:2]])
        started = dt.datetime.now()
        per_request = {}
        for scenario in scenarios:
            longer = _collected(args, scenario, args.requests)
            shorter = _collected(args, scenario, args.baseline)
            per_request[scenario] = (longer - shorter) / (args.requests - args.baseline)
            floor = per_request.get("healthz")
            versus = f"  {per_request[scenario] / floor:5.2f}x healthz" if floor and scenario != "healthz" else ""
            print(f"{scenario:<12} {per_request[scenario] / 1000:9,.0f}k instructions per request{versus}", flush=True)
            if args.profile:
                subprocess.run([sys.executable, "-m", "bench.instructions", "--child", scenario, "--cprofile",
                                "--requests", str(args.requests), "--database-url", url, "--reader", args.reader,
                                "--submitter", args.submitter, "--regency", args.regency], check=True)
        print(f"({args.requests} - {args.baseline} requests each, {dt.datetime.now() - started} in all)")


def _first_regency(url):
    conn = dataset.connect(url)
    try:
        with conn:
            return queries.regency_codes(conn, limit=1)[0]
    finally:
        conn.close()


if __name__ == "__main__":
    main()
