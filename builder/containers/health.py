"""HEALTHCHECK: a small monitor process per running container (docker's daemon does this).

Started detached by ``start``; it probes every ``interval`` (``start_interval`` during the
start period), each probe a ``runc exec`` of the test with ``timeout``. A success makes the
container ``healthy``; ``retries`` consecutive failures make it ``unhealthy``; failures during
the start period do not count. The status lives in the container's state (``ps`` shows it);
the monitor ends when the container is no longer the one it was started for.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import replace
from typing import Final

from builder.containers.lifecycle import Containers
from builder.containers.state import Status

LOG_ENTRIES: Final = 5  # docker keeps the last five probes


def _stamp(when: float) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.UTC).isoformat().replace("+00:00", "Z")


def monitor(containers: Containers, container_id: str) -> None:
    first = containers.store.load(container_id)
    health = first.config.health
    started = first.state.started_at
    if health is None or started is None:
        return
    conmon_pid = first.state.conmon_pid
    while True:
        in_start_period = time.time() - started < health.start_period
        time.sleep(health.start_interval if in_start_period else health.interval)
        current = containers.store.load(container_id)
        if current.state.status is not Status.RUNNING or current.state.conmon_pid != conmon_pid:
            return
        begin = time.time()
        code = containers.exec_capture(current, health.test, health.timeout)
        end = time.time()
        with containers.store.locked(container_id):
            state = containers.store.load(container_id).state
            if state.status is not Status.RUNNING or state.conmon_pid != conmon_pid:
                return
            entry = {"Start": _stamp(begin), "End": _stamp(end), "ExitCode": code}
            log = (*state.health_log, entry)[-LOG_ENTRIES:]
            if code == 0:
                state = replace(state, health="healthy", failing_streak=0, health_log=log)
            elif in_start_period and time.time() - started < health.start_period:
                state = replace(state, health_log=log)
            else:
                streak = state.failing_streak + 1
                status = "unhealthy" if streak >= health.retries else state.health
                state = replace(state, health=status, failing_streak=streak, health_log=log)
            containers.store.save_state(container_id, state)
