"""Fixtures of the adversarial and fault checklist (docs/SECURITY.md section 3).

The suites share the build-engine kit of tests/integration (``enginekit``: ``Builder``, ``F``,
the busybox store fixtures) and the registry kit (``regserver``: real ``docker-registry`` and
the fault proxy) and the hand-made tar archives of the layer tests (``tarcraft``); their
directories go on ``sys.path`` here, as pytest does for their own conftests. The checks
every case states (E, C, S) are in ``advkit``.
"""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parent.parent
for _kit in (_TESTS / "integration", _TESTS / "integration" / "registry", _TESTS / "unit" / "oci"):
    if str(_kit) not in sys.path:
        sys.path.insert(0, str(_kit))

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
from advkit import Sentinels  # noqa: E402
from enginekit import busybox_history, pb, store_root  # noqa: E402

__all__ = ["busybox_history", "pb", "sentinels", "store_root"]


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[Sentinels]:
    """Sentinel files outside rootfs, store and context, checked unchanged after the test."""
    watch = Sentinels.create(tmp_path / "sentinels")
    yield watch
    watch.check()
    watch.remove()
