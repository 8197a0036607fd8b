"""The kernel's autogroup scheduling, which the benchmark switches off for its run when it can.

With `kernel.sched_autogroup_enabled = 1` and every process in the root CPU cgroup (no CPU
controller per service, as on this VM), Linux schedules each session as one group, and every
PostgreSQL backend starts a session of its own (postmaster children call setsid()). A backend
then competes as a group of one beside the group that holds all of gunicorn's workers, and under
full CPU it was left waiting for tens of milliseconds at a stretch: on the national database,
4 connections, `GET /v1/coverage` had p99 48-154 ms with autogroup on and 10-12 ms with it off,
three runs each, the same service; the slow statements were "active" with no wait event in
pg_stat_activity, and pgbench alone never showed one (bench/RESULTS.md). A deployment that runs
the service and PostgreSQL on one machine should switch it off (README, Deploy); the benchmark
measures that deployment, and says so.

The kernel places a process in its group when it starts (fork, setsid), so the setting applies
to the processes started after it changes: the run switches it before it starts the service,
whose connections then get new backends.
"""
import contextlib
import signal
import sys
from pathlib import Path

AUTOGROUP = Path("/proc/sys/kernel/sched_autogroup_enabled")
_RESTORE_BY_HAND = "sysctl -w kernel.sched_autogroup_enabled=1"


def autogroup():
    """'on', 'off', or 'absent' (a kernel without it)."""
    try:
        return "on" if AUTOGROUP.read_text().strip() == "1" else "off"
    except OSError:
        return "absent"


def _write(value):
    try:
        AUTOGROUP.write_text(value)
        return True
    except OSError:
        return False


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _signals_exit(*signums):
    """SIGTERM and SIGHUP (a CI job cancelled, a terminal closed) end the run through the finally
    blocks, as Ctrl-C does, instead of killing the process where it stands."""
    previous = {signum: signal.signal(signum, _exit_on_signal) for signum in signums}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def autogroup_off(wanted=True):
    """Autogroup off for the block when `wanted` and it is on (when permitted), back on after it.

    Yields what the run measures under, as a sentence for the output. It is put back on only if it
    still reads off: a change made by hand meanwhile stays.
    """
    before = autogroup()
    if before != "on":
        yield f"autogroup scheduling {before}"
    elif not wanted:
        yield "autogroup scheduling on, as the machine has it: expect p99 tails (bench/RESULTS.md)"
    elif not _write("0"):
        yield ("autogroup scheduling on: switching it off was not permitted (not root, or /proc/sys read-only), "
               "so expect p99 tails; sysctl -w kernel.sched_autogroup_enabled=0 before the run (bench/RESULTS.md)")
    else:
        try:
            with _signals_exit(signal.SIGTERM, signal.SIGHUP):
                yield "autogroup scheduling switched off for this run, as README's Deploy advises (back on after it)"
        finally:
            if autogroup() == "off" and not _write("1"):
                print(f"could not switch autogroup scheduling back on: {_RESTORE_BY_HAND}", file=sys.stderr)
