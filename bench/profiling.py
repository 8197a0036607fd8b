"""Where a worker spends its CPU during a scenario: py-spy on every gunicorn worker, summed by function."""
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROFILES = Path(__file__).parent / "profiles"


def py_spy():
    found = Path(sys.executable).parent / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


class Sampling:
    """py-spy record (raw folded stacks) on each worker while a load runs; summary() after it."""

    def __init__(self, pids, seconds, rate=200):
        self._dir = tempfile.TemporaryDirectory(prefix="ktpel-bench-pyspy-")
        self._outputs = []
        self._processes = []
        for pid in pids:
            out = Path(self._dir.name) / f"{pid}.txt"
            self._outputs.append(out)
            self._processes.append(subprocess.Popen(
                [py_spy(), "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(rate),
                 "--format", "raw", "--output", str(out), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def summary(self, top=14):
        for p in self._processes:
            p.wait()
        inclusive, leaf, total = collections.Counter(), collections.Counter(), 0
        for out in self._outputs:
            if not out.exists():
                continue
            for line in out.read_text().splitlines():
                stack, _, count = line.rpartition(" ")
                if not count.isdigit():
                    continue
                n = int(count)
                total += n
                frames = [_short(f) for f in stack.split(";")]
                for frame in set(frames):
                    inclusive[frame] += n
                leaf[frames[-1]] += n
        self._dir.cleanup()
        if not total:
            return "no samples (py-spy could not attach?)"
        lines = [f"{total} samples of busy worker threads (CPU, not waiting)", "", "inclusive (the frame or below):"]
        lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top * 2)
                  if not frame.endswith(_PLUMBING)][:top]
        lines += ["", "self (the innermost frame):"]
        lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in leaf.most_common(top)]
        return "\n".join(lines)


# Frames every request passes through: they say nothing about what limits a scenario.
_PLUMBING = ("(threading.py)", "(concurrent/futures/thread.py)", "(gunicorn/workers/gthread.py)",
             "(gunicorn/arbiter.py)", "(gunicorn/app/base.py)", "(gunicorn/workers/base.py)", "(click/core.py)",
             "(service/cli.py)", "(service/server.py)", "(gunicorn/app/wsgiapp.py)", "(runpy.py)")


def _short(frame):
    # "function (path/to/site-packages/pkg/module.py:123)" -> "function (pkg/module.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3.11/", "/wt-bench/", "/work/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def available():
    return py_spy() is not None
