"""Who used the machine's CPUs during a run: the service's workers, its PostgreSQL backends, the rest.

The rest includes the load generator and anything else running on the machine (other users'
builds and tests), which a 2-core machine feels at once; the figures show it rather than hide it.
"""
import os
import time

import psutil


def _processes(service, database_name):
    found = {}
    for pid in service.worker_pids():
        found[pid] = "workers"
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if cmdline.startswith("postgres:") and f" {database_name} " in cmdline:
            found[proc.info["pid"]] = "database"
    return found


def _cpu_of(pids):
    seconds = {}
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            seconds[pid] = t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return seconds


class CpuAccount:
    """Snapshot now; shares() after the run: each group's CPU as a share of all the machine's CPUs."""

    def __init__(self, service, database_name):
        self._service, self._database = service, database_name
        self._groups = _processes(service, database_name)
        self._before = _cpu_of(self._groups)
        self._machine = psutil.cpu_times()
        self._started = time.monotonic()

    def used_seconds(self):
        """CPU seconds the workers and the database's backends have used since the snapshot."""
        return self._used({**self._groups, **_processes(self._service, self._database)})

    def _used(self, groups):
        after = _cpu_of(groups)
        used = {"workers": 0.0, "database": 0.0}
        for pid, group in groups.items():
            if pid in after:
                used[group] += after[pid] - self._before.get(pid, 0.0)
        return used

    def shares(self):
        groups = {**self._groups, **_processes(self._service, self._database)}  # slow: before the clocks
        m1 = psutil.cpu_times()
        wall = (time.monotonic() - self._started) * (os.cpu_count() or 1)
        used = self._used(groups)
        m0 = self._machine
        busy = sum(getattr(m1, f) - getattr(m0, f) for f in ("user", "nice", "system", "irq", "softirq", "steal"))
        shares = {group: round(seconds / wall, 3) for group, seconds in used.items()}
        shares["everything_else"] = round(max(0.0, busy - sum(used.values())) / wall, 3)
        shares["idle"] = round(max(0.0, 1 - busy / wall), 3)
        shares["load_average_1m"] = round(os.getloadavg()[0], 2)
        return shares
