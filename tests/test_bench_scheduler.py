"""bench/scheduler.py: the benchmark switches autogroup scheduling off for its run, and always back on."""
import pytest

from bench import scheduler


@pytest.fixture
def setting(tmp_path, monkeypatch):
    path = tmp_path / "sched_autogroup_enabled"
    monkeypatch.setattr(scheduler, "AUTOGROUP", path)
    return path


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


def test_left_alone_when_not_wanted_or_already_off(setting):
    setting.write_text("1\n")
    with scheduler.autogroup_off(wanted=False) as said:
        assert scheduler.autogroup() == "on"
    assert "as the machine has it" in said
    setting.write_text("0\n")
    with scheduler.autogroup_off() as said:
        pass
    assert setting.read_text() == "0\n"
    assert said == "autogroup scheduling off"


def test_said_so_when_it_cannot_be_switched(setting, tmp_path, monkeypatch):
    setting.write_text("1\n")
    monkeypatch.setattr(scheduler, "_write", lambda value: False)  # as for a user who is not root
    with scheduler.autogroup_off() as said:
        assert scheduler.autogroup() == "on"
    assert "could not switch it off" in said


def test_a_kernel_without_it(setting):
    assert scheduler.autogroup() == "absent"
    with scheduler.autogroup_off() as said:
        pass
    assert said == "autogroup scheduling absent"
    assert not setting.exists()
