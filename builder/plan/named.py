"""The name a ``--build-context`` answers to, as BuildKit's ``NamedContext`` looks it up.

BuildKit (``frontend/dockerui/namedcontext.go``) and buildx both normalise a context name the
way an image reference is normalised, then take its familiar form without ``:latest``: the
context ``alpine`` answers ``FROM alpine``, ``FROM alpine:latest`` and
``FROM docker.io/library/alpine``, but not ``FROM alpine:3.20``. A stage's name is looked up the
same way: a stage named like a context is replaced by it.
"""

from __future__ import annotations

from builder.errors import InvalidReferenceError
from builder.reference import parse_normalized


def context_key(name: str) -> str | None:
    """The lookup key of ``name`` (a context name, a FROM or ``--from`` value), or None when
    ``name`` is not a valid reference (no context can answer to it)."""
    try:
        ref = parse_normalized(name)
    except InvalidReferenceError:
        return None
    return ref.familiar.removesuffix(":latest")


__all__ = ["context_key"]
