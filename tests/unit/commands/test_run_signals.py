"""``pybuild run``'s stop signals (no container: a recording stand-in for the runtime).

Before the container starts a signal unwinds the set-up; while it runs every signal is
forwarded and the container is killed after the stop timeout; after it they are ignored.
Before any command starts, the CLI exits quietly as the signal would have ended it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from builder import cli
from builder.commands.run import STOP_SIGNALS, StopSignals
from builder.errors import Interrupted


class Recorder:
    """Records what :class:`StopSignals` asks of the runtime."""

    def __init__(self) -> None:
        self.forwarded: list[int] = []
        self.kills = 0
        self.killed = threading.Event()

    def forward_signal(self, signum: int) -> None:
        self.forwarded.append(signum)

    def kill_all(self) -> None:
        self.kills += 1
        self.killed.set()


def deliver(signum: int) -> None:
    """Send ``signum`` to this process and let its Python handler run."""
    os.kill(os.getpid(), signum)
    time.sleep(0.01)  # the handler runs between bytecodes, at the latest here


def set_up_and_run() -> None:
    with StopSignals(10).installed():
        deliver(signal.SIGTERM)
        pytest.fail("the signal did not stop the set-up")


def test_a_signal_before_the_container_starts_unwinds() -> None:
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    with pytest.raises(Interrupted) as info:
        set_up_and_run()
    assert info.value.signum == signal.SIGTERM
    assert {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} == before  # put back


def test_signals_are_forwarded_and_the_container_killed_after_the_timeout() -> None:
    runtime = Recorder()
    with StopSignals(0.3).installed() as signals, signals.running(runtime):
        deliver(signal.SIGTERM)
        deliver(signal.SIGINT)  # within the timeout: forwarded, no second timer
        deliver(signal.SIGHUP)
        assert runtime.forwarded == [signal.SIGTERM, signal.SIGINT, signal.SIGHUP]
        assert runtime.kills == 0
        assert runtime.killed.wait(5)
        time.sleep(0.5)
    assert runtime.kills == 1


def test_no_kill_when_the_container_exits_in_time() -> None:
    runtime = Recorder()
    with StopSignals(0.2).installed() as signals:
        with signals.running(runtime):
            deliver(signal.SIGTERM)
        time.sleep(0.4)
    assert (runtime.forwarded, runtime.kills) == ([signal.SIGTERM], 0)


def test_a_negative_timeout_never_kills() -> None:
    runtime = Recorder()
    with StopSignals(-1).installed() as signals, signals.running(runtime):
        deliver(signal.SIGTERM)
        time.sleep(0.2)
    assert (runtime.forwarded, runtime.kills) == ([signal.SIGTERM], 0)


def test_signals_after_the_container_are_ignored() -> None:
    runtime = Recorder()
    with StopSignals(0).installed() as signals:
        with signals.running(runtime):
            pass
        deliver(signal.SIGTERM)  # the clean-up goes on; the container's status stands
        deliver(signal.SIGINT)
    assert (runtime.forwarded, runtime.kills) == ([], 0)


@pytest.fixture
def handlers_kept() -> Iterator[None]:
    """Put back the signal handlers that ``cli.main`` installs."""
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    yield
    for sig, handler in before.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("handlers_kept")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_before_the_command_starts_exits_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], signum: int
) -> None:
    def load(name: str) -> cli.CommandModule:
        deliver(signum)  # while the command is still being loaded
        raise AssertionError("not reached")

    monkeypatch.setattr(cli, "_load", load)
    assert cli.main(["run", "busybox"]) == 128 + signum
    assert capsys.readouterr() == ("", "")
