"""Where a build's time goes: ``--debug-timings`` (or ``PYBUILD_DEBUG_TIMINGS=1``).

A :class:`Collector` is installed for one command (:func:`collecting`) in a context variable;
code marks its phases with ``with phase("name"):``, which costs one context-variable lookup when
no collector is installed. Each phase records its wall time, the CPU time of the calling thread
(user and system, ``getrusage(RUSAGE_THREAD)``) and the CPU time of the child processes reaped
meanwhile (runc, for one: ``RUSAGE_CHILDREN`` is per process, so with stages running in
parallel a phase may be charged a sibling's children). Phases nest: a phase opened inside
another is shown below it, indented. Threads started with :func:`contextvars.copy_context`
(the scheduler's stage threads) report into the same collector.

This module is a leaf: it imports nothing of pybuild, and holds no state but the context
variables.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import resource
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

ENV: Final = "PYBUILD_DEBUG_TIMINGS"


@dataclass(frozen=True, slots=True, kw_only=True)
class Phase:
    name: str
    depth: int
    thread: str
    start: float  # seconds since the collector started
    wall: float
    user: float  # this thread's CPU time
    system: float
    children: float  # user + system CPU of child processes reaped during the phase


@dataclass(slots=True)
class Collector:
    """The phases of one command, in the order they ended (use :meth:`ordered` to print)."""

    started: float = field(default_factory=time.perf_counter)
    phases: list[Phase] = field(default_factory=list)
    notes: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, item: Phase) -> None:
        with self.lock:
            self.phases.append(item)

    def note(self, text: str) -> None:
        with self.lock:
            self.notes.append((time.perf_counter() - self.started, text))

    def ordered(self) -> list[Phase]:
        """Phases by start time, an enclosing phase before the ones it holds."""
        with self.lock:
            return sorted(self.phases, key=lambda p: (p.start, p.depth))

    def render(self) -> str:
        """The table ``--debug-timings`` prints (to stderr)."""
        lines = [f"#timings {'start':>7} {'wall':>7} {'user':>7} {'sys':>7} {'child':>7}  phase"]
        for p in self.ordered():
            where = "" if p.thread == "MainThread" else f"  ({p.thread})"
            lines.append(
                f"#timings {p.start:7.3f} {p.wall:7.3f} {p.user:7.3f} {p.system:7.3f}"
                f" {p.children:7.3f}  {'  ' * p.depth}{p.name}{where}"
            )
        with self.lock:
            lines += [f"#timings {at:7.3f} {'':31}  note: {text}" for at, text in self.notes]
        return "\n".join(lines) + "\n"


_collector: contextvars.ContextVar[Collector | None] = contextvars.ContextVar(
    "pybuild_timings", default=None
)
_depth: contextvars.ContextVar[int] = contextvars.ContextVar("pybuild_timings_depth", default=0)


def enabled_by_environment() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


@contextlib.contextmanager
def collecting(collector: Collector) -> Iterator[Collector]:
    """Record the phases of the code run inside into ``collector``."""
    token = _collector.set(collector)
    try:
        yield collector
    finally:
        _collector.reset(token)


def active() -> Collector | None:
    return _collector.get()


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the code inside as the phase ``name`` (nothing when no collector is installed)."""
    collector = _collector.get()
    if collector is None:
        yield
        return
    depth = _depth.get()
    token = _depth.set(depth + 1)
    t0 = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_THREAD)
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        yield
    finally:
        r1 = resource.getrusage(resource.RUSAGE_THREAD)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t1 = time.perf_counter()
        _depth.reset(token)
        collector.add(
            Phase(
                name=name,
                depth=depth,
                thread=threading.current_thread().name,
                start=t0 - collector.started,
                wall=t1 - t0,
                user=r1.ru_utime - r0.ru_utime,
                system=r1.ru_stime - r0.ru_stime,
                children=(c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime),
            )
        )


def note(text: str) -> None:
    """Record ``text`` (e.g. which path a build took) when a collector is installed."""
    collector = _collector.get()
    if collector is not None:
        collector.note(text)


def process_start_up(collector: Collector) -> Phase:
    """The phase from the process's start to ``collector``'s creation: interpreter start-up and
    imports (wall from ``/proc/self/stat``'s start time, 10 ms resolution; CPU of the process)."""
    wall = 0.0
    try:
        with open("/proc/self/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        started_ticks = int(fields[19])  # field 22, starttime, in clock ticks since boot
        ticks = os.sysconf("SC_CLK_TCK")
        boot_now = time.clock_gettime(time.CLOCK_BOOTTIME) - (
            time.perf_counter() - collector.started
        )
        wall = max(0.0, boot_now - started_ticks / ticks)
    except (OSError, ValueError, IndexError):
        pass
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return Phase(
        name="start-up and imports",
        depth=0,
        thread="MainThread",
        start=-wall,
        wall=wall,
        user=usage.ru_utime,
        system=usage.ru_stime,
        children=0.0,
    )
