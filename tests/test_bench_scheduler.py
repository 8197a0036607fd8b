"""bench/scheduler.py: the benchmark switches autogroup scheduling off for its run, and always back on."""
import os
import signal

import pytest

from bench import scheduler


@pytest.fixture
def setting(tmp_path, monkeypatch):
    path = tmp_path / "sched_autogroup_enabled"
    monkeypatch.setattr(scheduler, "AUTOGROUP", path)
    return path


class _Setting:
    """The kernel's file where writing fails, as for a user who is not root: after `writable` writes."""

    def __init__(self, value, writable=0):
        self.value, self.writable, self.writes = value, writable, []

    def read_text(self):
        return self.value

    def write_text(self, value):
        if len(self.writes) >= self.writable:
            raise PermissionError("Operation not permitted")
        self.writes.append(value)
        self.value = value


def test_switched_off_for_the_block_and_back_on_after(setting):
    setting.write_text("1\n")
    with scheduler.autogroup_off() as said:
        assert setting.read_text() == "0"
        assert scheduler.autogroup() == "off"
    assert "switched off for this run" in said
    assert setting.read_text() == "1"


def test_back_on_when_the_run_fails(setting):
    setting.write_text("1\n")
    with pytest.raises(KeyboardInterrupt), scheduler.autogroup_off():
        raise KeyboardInterrupt
    assert setting.read_text() == "1"


def test_back_on_when_the_run_is_terminated(setting):
    setting.write_text("1\n")
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit), scheduler.autogroup_off():
        os.kill(os.getpid(), signal.SIGTERM)  # its handler runs before the next line
        pytest.fail("SIGTERM did not end the block")
    assert setting.read_text() == "1"
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_change_made_by_hand_during_the_run_stays(setting):
    setting.write_text("1\n")
    with scheduler.autogroup_off():
        setting.write_text("1\n")  # someone ran sysctl meanwhile (the run would have written "1")
    assert setting.read_text() == "1\n"


def test_left_alone_when_not_wanted_or_already_off(setting):
    setting.write_text("1\n")
    with scheduler.autogroup_off(wanted=False) as said:
        assert scheduler.autogroup() == "on"
    assert "as the machine has it" in said
    assert setting.read_text() == "1\n"
    setting.write_text("0\n")
    with scheduler.autogroup_off() as said:
        pass
    assert setting.read_text() == "0\n"
    assert said == "autogroup scheduling off"


def test_said_so_when_it_may_not_be_switched(monkeypatch):
    kernel = _Setting("1\n")
    monkeypatch.setattr(scheduler, "AUTOGROUP", kernel)
    with scheduler.autogroup_off() as said:
        assert scheduler.autogroup() == "on"
    assert "not permitted" in said and "sysctl -w kernel.sched_autogroup_enabled=0" in said
    assert kernel.writes == []


def test_said_so_when_it_cannot_be_switched_back(monkeypatch, capsys):
    kernel = _Setting("1\n", writable=1)
    monkeypatch.setattr(scheduler, "AUTOGROUP", kernel)
    with scheduler.autogroup_off():
        assert kernel.value == "0"
    assert kernel.value == "0"
    assert "sysctl -w kernel.sched_autogroup_enabled=1" in capsys.readouterr().err


def test_a_kernel_without_it(setting):
    assert scheduler.autogroup() == "absent"
    with scheduler.autogroup_off() as said:
        pass
    assert said == "autogroup scheduling absent"
    assert not setting.exists()
