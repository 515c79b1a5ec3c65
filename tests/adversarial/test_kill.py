"""Checklist case 26 (docs/SECURITY.md section 3): SIGKILL pybuild at random points of a
multi-stage build and its push; the next pybuild start reaps what it left, fsck is clean and
the build succeeds again. ``make test`` runs a few kills with a fixed seed (the same moments on
every run); ``make stress`` runs ``python -m tests.adversarial.killtest --kills 50``."""

from __future__ import annotations

from pathlib import Path

import pytest
from enginekit import require_environment

from tests.adversarial.killtest import run_kill_test

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILLS = 5
SEED = 26


def test_case_26_sigkill_at_random_points_then_the_next_start_reaps(tmp_path: Path) -> None:
    require_environment()
    figures, report = run_kill_test(KILLS, SEED, tmp_path / "killtest")
    print(report)
    assert figures.failures == [], report
    assert figures.kills == KILLS
    # the kills covered the build's steps and the push, and left things to reap
    assert sum(figures.found.values()) > 0, report
