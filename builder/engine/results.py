"""What a build reports of each layer step: a leaf module, so that a build answered by its
no-op record (``builder.engine.noop``) can report its steps without loading the engine."""

from __future__ import annotations

from dataclasses import dataclass

from builder.digest import Digest


@dataclass(frozen=True, slots=True, kw_only=True)
class StepResult:
    """How one layer step of the build went.

    ``text`` is the instruction as written, ``stage`` the stage's progress name (``""`` when
    the Dockerfile has one stage); ``layer`` is the layer's (compressed) blob digest and
    ``diff_id`` its content digest; ``duration`` is in seconds (lookup included).
    """

    stage: str
    text: str
    cached: bool
    layer: Digest
    diff_id: Digest
    duration: float
