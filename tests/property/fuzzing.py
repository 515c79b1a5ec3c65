"""Shared pieces of the fuzz targets: example counts that grow under ``make fuzz`` and a
strategy that mutates valid seeds (bit flips, truncation, splices, byte insertions).

``make test`` runs each target with its small count; ``make fuzz`` sets
``HYPOTHESIS_PROFILE=fuzz`` (registered in tests/conftest.py), which multiplies it.
Imported as ``fuzzing`` (pytest puts this directory on ``sys.path``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Final

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from builder.errors import BuildError
from tests.conftest import watchdog

FUZZ: Final = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"
# seconds one input may take before the target counts as hung (generous: 2 shared cores)
INPUT_SECONDS: Final = 5


def examples(n: int) -> int:
    """``n`` examples normally; 50 times as many under ``make fuzz``."""
    return n * 50 if FUZZ else n


def fuzz_settings(n: int) -> settings:
    """A fuzz target's settings: ``examples(n)``, no deadline (the watchdog bounds each input),
    large inputs welcome."""
    return settings(
        max_examples=examples(n),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes], max_edits: int = 6) -> bytes:
    """A seed (or a splice of two) with up to ``max_edits`` random edits."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, max_edits))):
        kind = draw(st.sampled_from(["flip", "truncate", "splice", "insert", "overwrite"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        match kind:
            case "flip" if data:
                data[pos] ^= 1 << draw(st.integers(0, 7))
            case "truncate":
                del data[pos:]
            case "splice":
                other = draw(st.sampled_from(seeds))
                start = draw(st.integers(0, max(len(other) - 1, 0)))
                data[pos:] = other[start:]
            case "insert":
                data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
            case _:
                value = draw(st.binary(min_size=1, max_size=12))
                data[pos : pos + len(value)] = value
    return bytes(data)


def outcome(call: Callable[[], object]) -> str:
    """Run ``call`` under the watchdog: "" when it returns, the message of the ``BuildError``
    it raises; any other exception (or ``TimeoutError`` past ``INPUT_SECONDS``) fails the test."""
    with watchdog(INPUT_SECONDS):
        try:
            call()
        except BuildError as err:
            return str(err) or type(err).__name__
    return ""
