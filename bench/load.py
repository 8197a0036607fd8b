"""Load generators: wrk (the real one) with a Lua script per workload, and a small Python fallback.

A workload is a list of requests that the connections take in turn, or, for submissions, a list of
regency systems that each post a growing count for today: every POST carries a new count.
"""
import http.client
import json
import resource
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class Workload:
    name: str
    paths: list = field(default_factory=list)  # GET these in turn
    headers: dict = field(default_factory=dict)
    submitters: list = field(default_factory=list)  # POST /v1/submissions: [(regency_code, token, start_count)]
    as_of: str | None = None
    scripts_made: int = 0  # each run's counts start above the last run's, so every POST is a new count

    def python_request(self, n):
        """The n-th request as (method, path, headers, body), the same sequence the Lua script makes."""
        if not self.submitters:
            return "GET", self.paths[n % len(self.paths)], self.headers, None
        code, token, start = self.submitters[n % len(self.submitters)]
        body = json.dumps({"regency_code": code, "as_of": self.as_of, "recorded": start + 1 + n,
                           "reference": f"bench-{n}"})
        return "POST", "/v1/submissions", {"Authorization": f"Bearer {token}",
                                           "Content-Type": "application/json"}, body


RUN_COUNT_STEP = 200_000  # more than one run's increments of a regency's count


def _lua_string(text):
    return json.dumps(text)  # a JSON string of plain ASCII is a valid Lua string literal


_LUA_COMMON = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_no", #threads)
end
n = 0
ok200, ok201, other2xx, c4xx, c5xx = 0, 0, 0, 0, 0
function response(status, headers, body)
  if status == 200 then ok200 = ok200 + 1
  elseif status == 201 then ok201 = ok201 + 1
  elseif status < 300 then other2xx = other2xx + 1
  elseif status < 500 then c4xx = c4xx + 1
  else c5xx = c5xx + 1 end
end
function done(summary, latency, requests)
  local t = {ok200 = 0, ok201 = 0, other2xx = 0, c4xx = 0, c5xx = 0}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + thread:get(k) end
  end
  local e = summary.errors
  io.write(string.format(
    '\\nRESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"errors": %d, "status_200": %d, "status_201": %d, "status_other_2xx": %d, "status_4xx": %d, "status_5xx": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, e.connect + e.read + e.write + e.timeout, t.ok200, t.ok201, t.other2xx, t.c4xx, t.c5xx))
end
"""

_LUA_GET = """
local paths = {%(paths)s}
local headers = {%(headers)s}
function request()
  n = n + 1
  return wrk.format("GET", paths[(n + thread_no) %% #paths + 1], headers)
end
"""

_LUA_POST = """
local systems = {%(systems)s}
local as_of = %(as_of)s
function request()
  n = n + 1
  local s = systems[(n * 7 + thread_no) %% #systems + 1]
  local body = string.format('{"regency_code": "%%s", "as_of": "%%s", "recorded": %%d, "reference": "bench-%%d-%%d"}',
                             s[1], as_of, s[3] + %(offset)d + n * 16 + thread_no, thread_no, n)
  return wrk.format("POST", "/v1/submissions",
                    {["Authorization"] = "Bearer " .. s[2], ["Content-Type"] = "application/json"}, body)
end
"""


def lua_script(workload):
    if workload.submitters:
        systems = ", ".join(f"{{{_lua_string(c)}, {_lua_string(t)}, {int(s)}}}" for c, t, s in workload.submitters)
        workload.scripts_made += 1
        body = _LUA_POST % {"systems": systems, "as_of": _lua_string(workload.as_of),
                            "offset": workload.scripts_made * RUN_COUNT_STEP}
    else:
        body = _LUA_GET % {
            "paths": ", ".join(_lua_string(p) for p in workload.paths),
            "headers": ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in workload.headers.items()),
        }
    return body + _LUA_COMMON


def wrk_available():
    return shutil.which("wrk") is not None


class WrkRun:
    """One wrk process, started now; result() waits for it."""

    def __init__(self, base_url, workload, *, connections, seconds, threads=1):
        self._dir = tempfile.TemporaryDirectory(prefix="ktpel-bench-wrk-")
        script = Path(self._dir.name) / f"{workload.name}.lua"
        script.write_text(lua_script(workload))
        self.connections = connections
        self.process = subprocess.Popen(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script),
             base_url],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )

    def result(self):
        out, _ = self.process.communicate()
        self._dir.cleanup()
        line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            raise RuntimeError(f"wrk gave no result:\n{out[-2000:]}")
        raw = json.loads(line[len("RESULT "):])
        seconds = raw["duration_us"] / 1e6
        return {
            "connections": self.connections, "requests": raw["requests"], "seconds": seconds,
            "rps": raw["requests"] / seconds, "p50_ms": raw["p50_us"] / 1e3, "p90_ms": raw["p90_us"] / 1e3,
            "p99_ms": raw["p99_us"] / 1e3, "max_ms": raw["max_us"] / 1e3, "socket_errors": raw["errors"],
            "status": {"200": raw["status_200"], "201": raw["status_201"], "other_2xx": raw["status_other_2xx"],
                       "4xx": raw["status_4xx"], "5xx": raw["status_5xx"]},
        }


class PythonRun:
    """The fallback when wrk is not installed: threads over keep-alive connections (slower than wrk)."""

    def __init__(self, base_url, workload, *, connections, seconds, threads=1):
        self.connections = connections
        url = urlsplit(base_url)
        self._latencies, self._status, self._errors = [], {}, 0
        self._lock = threading.Lock()
        self._counter = iter(range(10**12))
        stop_at = time.monotonic() + seconds
        self._started = time.monotonic()
        self._threads = [threading.Thread(target=self._client, args=(url.hostname, url.port, workload, stop_at))
                         for _ in range(connections)]
        for t in self._threads:
            t.start()

    def _client(self, host, port, workload, stop_at):
        conn = http.client.HTTPConnection(host, port, timeout=10)
        while time.monotonic() < stop_at:
            with self._lock:
                n = next(self._counter)
            method, path, headers, body = workload.python_request(n)
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                answer = conn.getresponse()
                answer.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                with self._lock:
                    self._errors += 1
                continue
            elapsed = time.perf_counter() - started
            with self._lock:
                self._latencies.append(elapsed)
                self._status[answer.status] = self._status.get(answer.status, 0) + 1
        conn.close()

    def result(self):
        for t in self._threads:
            t.join()
        seconds = time.monotonic() - self._started
        lat = sorted(self._latencies) or [0.0]

        def pct(p):
            return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1e3

        s = self._status
        return {
            "connections": self.connections, "requests": len(self._latencies), "seconds": seconds,
            "rps": len(self._latencies) / seconds, "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99),
            "max_ms": lat[-1] * 1e3, "socket_errors": self._errors,
            "status": {"200": s.get(200, 0), "201": s.get(201, 0),
                       "other_2xx": sum(v for k, v in s.items() if 200 <= k < 300 and k not in (200, 201)),
                       "4xx": sum(v for k, v in s.items() if 400 <= k < 500),
                       "5xx": sum(v for k, v in s.items() if k >= 500)},
        }


def start(base_url, workload, *, connections, seconds):
    runner = WrkRun if wrk_available() else PythonRun
    return runner(base_url, workload, connections=connections, seconds=seconds)


def run_together(base_url, jobs, *, seconds):
    """Run several workloads at once: [(workload, connections)]; returns their results and the generators' CPU."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_before = time.process_time()
    runs = [start(base_url, w, connections=c, seconds=seconds) for w, c in jobs]
    results = [r.result() for r in runs]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # wrk is a child process; the Python fallback runs in this one
    generator_cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) if wrk_available() \
        else time.process_time() - cpu_before
    for r in results:
        r["generator_cpu_share"] = generator_cpu / seconds / len(results)
    return results


def median_of(results):
    """The median of each figure over several runs of one workload."""
    keys = ("rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "generator_cpu_share")
    merged = {k: statistics.median(r[k] for r in results) for k in keys}
    merged["connections"] = results[0]["connections"]
    merged["requests"] = sum(r["requests"] for r in results)
    merged["socket_errors"] = sum(r["socket_errors"] for r in results)
    merged["status"] = {k: sum(r["status"][k] for r in results) for k in results[0]["status"]}
    merged["runs"] = len(results)
    return merged
