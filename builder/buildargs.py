"""Build args given as words: ``NAME=VALUE``, or ``NAME`` alone, which takes the environment's
value (docker's rule). A leaf module, so that ``check`` reads them without loading the API."""

from __future__ import annotations

import os
from collections.abc import Iterable


def resolve_build_args(
    pairs: Iterable[tuple[str, str | None]],
) -> tuple[tuple[str, str], ...]:
    """Build args with values: ``NAME`` alone (None) takes the environment's value, if set."""
    out: list[tuple[str, str]] = []
    for key, value in pairs:
        if value is None:
            env = os.environ.get(key)
            if env is None:
                continue
            value = env
        out.append((key, value))
    return tuple(out)
