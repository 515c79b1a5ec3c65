"""Shared fixtures and paths for the whole suite."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# CI replays a fixed set of examples (derandomize) so a submission's result does not depend on
# the luck of the draw; developers' runs ("dev") keep exploring new examples on every run. Both
# share few cores between xdist workers, so hypothesis's wall-clock checks (deadline, too_slow)
# say more about the machine's load than about the code: they are off everywhere (speed is
# measured in bench/, never in tests).
settings.register_profile(
    "dev", print_blob=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("ci", settings.get_profile("dev"), derandomize=True)
# `make fuzz` (HYPOTHESIS_PROFILE=fuzz): the fuzz targets run many more random examples; their
# example counts go through tests/property/fuzzing.py's ``examples``, which scales with it.
settings.register_profile("fuzz", settings.get_profile("dev"), max_examples=5000)
CI = bool(os.environ.get("CI"))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if CI else "dev"))

REPO = Path(__file__).resolve().parent.parent


# BuildKit's parser goldens and word-expansion tables, vendored with its LICENSE and a NOTICE.
BUILDKIT_GOLDEN = REPO / "tests" / "golden" / "buildkit"


def require(met: bool, what: str) -> bool:
    """State what a test needs for its full check, and say whether this machine has it.

    CI runs as root on a machine set up by ``make test``, so there (``CI`` set) an unmet need
    fails the test. Elsewhere the test goes on and checks only what this machine allows; the
    ``if require(...)`` in the test shows which assertions that leaves out.
    """
    if not met and CI:
        pytest.fail(f"this test needs {what} (CI is set, where it must be available)")
    return met


def try_setxattr(path: Path, name: str) -> bool:
    """Set ``name=y`` on ``path``; False when its filesystem or this user cannot."""
    try:
        os.setxattr(path, name, b"y")
    except OSError:
        return False
    return True


@contextmanager
def watchdog(seconds: int) -> Iterator[None]:
    """Fail with ``TimeoutError`` (never hang) when the block runs longer than ``seconds``:
    a SIGALRM in the main thread, where pytest and its xdist workers run tests."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"no result within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
