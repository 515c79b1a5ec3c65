"""builder.timings: phases recorded into the installed collector, nothing without one."""

from __future__ import annotations

import contextvars
import threading
import time

import pytest

from builder import timings


def test_without_a_collector_phases_record_nothing() -> None:
    assert timings.active() is None
    with timings.phase("ignored"):
        timings.note("ignored too")
    assert timings.active() is None


def test_phases_nest_and_render_in_start_order() -> None:
    collector = timings.Collector()
    with timings.collecting(collector):
        with timings.phase("outer"):
            with timings.phase("inner"):
                time.sleep(0.01)
            timings.note("took the slow path")
        with timings.phase("after"):
            pass
    assert timings.active() is None
    phases = collector.ordered()
    assert [(p.name, p.depth) for p in phases] == [("outer", 0), ("inner", 1), ("after", 0)]
    outer, inner, _ = phases
    assert outer.wall >= inner.wall >= 0.01
    assert inner.start >= outer.start
    text = collector.render()
    lines = text.splitlines()
    assert lines[0].split() == ["#timings", "start", "wall", "user", "sys", "child", "phase"]
    assert lines[1].endswith("  outer")
    assert lines[2].endswith("    inner")
    assert lines[-1].endswith("note: took the slow path")


def test_a_thread_started_with_the_context_reports_into_the_collector() -> None:
    collector = timings.Collector()
    with timings.collecting(collector), timings.phase("steps"):
        ctx = contextvars.copy_context()
        worker = threading.Thread(target=ctx.run, args=(_work,), name="stage_0")
        worker.start()
        worker.join()
    step = next(p for p in collector.phases if p.name == "step")
    assert (step.thread, step.depth) == ("stage_0", 1)
    assert "step  (stage_0)" in collector.render()


def _work() -> None:
    with timings.phase("step"):
        pass


def test_child_processes_are_charged_to_the_phase_that_reaped_them() -> None:
    import subprocess

    collector = timings.Collector()
    with timings.collecting(collector), timings.phase("spawn"):
        subprocess.run(["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"], check=True)
    (spawn,) = collector.phases
    assert spawn.children > 0


def test_start_up_phase_covers_the_process_so_far() -> None:
    collector = timings.Collector()
    start = timings.process_start_up(collector)
    assert start.name == "start-up and imports"
    assert start.wall > 0
    assert start.start == -start.wall
    assert start.user > 0


def test_the_environment_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(timings.ENV, "1")
    assert timings.enabled_by_environment()
    monkeypatch.setenv(timings.ENV, "0")
    assert not timings.enabled_by_environment()
    monkeypatch.delenv(timings.ENV)
    assert not timings.enabled_by_environment()
