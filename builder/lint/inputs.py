"""What the checks need from outside the Dockerfile, handed in by the caller.

The build arguments and platforms of the build, the context's ``.dockerignore`` (for
CopyIgnoredFile) and what the local store knows about a base image (its platform for
InvalidBaseImagePlatform, its environment for UndefinedVar, its SHELL for JSONArgsRecommended).
Nothing here is looked up by this package: the CLI and the build pass it in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from builder.oci.types import Platform


class IgnorePattern(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def exclusion(self) -> bool: ...


class IgnoreRules(Protocol):
    """The context's ``.dockerignore`` (``builder.context.ignore.PatternMatcher`` fits)."""

    @property
    def patterns(self) -> Sequence[IgnorePattern]: ...

    @property
    def exclusions(self) -> bool: ...

    def matches_or_parent_matches(self, path: str) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseImage:
    """A base image as the store has it: platform, environment (``(name, value)``), SHELL set."""

    platform: Platform
    env: tuple[tuple[str, str], ...] = ()
    shell: bool = False


def _no_args() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class LintInputs:
    """``check`` is the ``BUILDKIT_DOCKERFILE_CHECK`` build arg (it replaces the ``# check=``
    directive). ``reachable`` are the stages a build runs (BuildKit warns about instruction
    values only in those); ``None`` checks every stage, as ``docker build --check`` does.
    ``base_image`` answers for an image reference and platform, or ``None`` when the store does
    not have it."""

    check: str | None = None
    build_args: Mapping[str, str] = field(default_factory=_no_args)
    target: str | None = None
    target_platform: Platform = field(default_factory=Platform.host)
    build_platform: Platform = field(default_factory=Platform.host)
    reachable: frozenset[int] | None = None
    ignore: IgnoreRules | None = None
    base_image: Callable[[str, Platform], BaseImage | None] | None = None
