"""Source spans, the pybuild exception hierarchy and diagnostics.

This module imports nothing from the rest of the package: every layer may use it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TypeVar


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    """A region of a source file; lines and columns are 1-based, ``end_*`` inclusive."""

    file: str
    line: int
    column: int = 1
    end_line: int | None = None
    end_column: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class BuildError(Exception):
    """Base of every error pybuild raises on purpose.

    ``str(err)`` is ``"FILE:LINE:COL: message"`` when a span is known, else the message.
    """

    def __init__(
        self,
        message: str,
        *,
        span: Span | None = None,
        hint: str | None = None,
        related: tuple[BuildError, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.related = related

    def __str__(self) -> str:
        if self.span is None:
            return self.message
        return f"{self.span}: {self.message}"


class DockerfileError(BuildError):
    """A static problem in a Dockerfile."""


class ParseError(DockerfileError):
    """The Dockerfile text cannot be parsed into instructions."""


class UnknownInstructionError(DockerfileError):
    """An instruction keyword that does not exist."""


class InvalidInstructionError(DockerfileError):
    """A bad flag, argument count or argument value."""


class StageError(DockerfileError):
    """Unknown or duplicate stage, or a cycle between stages."""


class ExpansionError(DockerfileError):
    """Variable substitution failed (bad substitution, ``${x:?}``, too deep, too large)."""


class ContextError(BuildError):
    """A build-context path is missing, escapes the context, or cannot be fetched."""


class ExecutionError(BuildError):
    """A build step failed while running."""


class RunStepError(ExecutionError):
    def __init__(
        self, message: str, *, exit_code: int, output_tail: str = "", span: Span | None = None
    ) -> None:
        super().__init__(message, span=span)
        self.exit_code = exit_code
        self.output_tail = output_tail


class RegistryError(BuildError):
    """A registry refused, failed or lied.

    ``reference`` is the image reference (or registry host) involved, ``status`` the HTTP status
    when there was one, ``codes`` the distribution-API error codes of the response, and
    ``temporary`` whether trying again later may succeed (timeouts, 429, 5xx, resets).
    """

    def __init__(
        self,
        message: str,
        *,
        reference: str = "",
        status: int | None = None,
        codes: tuple[str, ...] = (),
        temporary: bool = False,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.reference = reference
        self.status = status
        self.codes = codes
        self.temporary = temporary


class AuthenticationError(RegistryError):
    """Credentials are missing, wrong, or were refused (HTTP 401/403, token server errors)."""


class ManifestNotFoundError(RegistryError):
    """The repository, tag or digest does not exist in the registry (HTTP 404)."""


class UnsupportedManifestError(RegistryError):
    """The registry returned a manifest pybuild cannot use (schema 1, unknown media type)."""


class StoreError(BuildError):
    """The local image store is missing something or is damaged."""


class LayerError(StoreError):
    """A layer archive is malformed, unsafe (escapes the rootfs) or over a limit."""


class DigestMismatchError(StoreError):
    def __init__(self, message: str, *, expected: str, actual: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class InvalidReferenceError(BuildError):
    """An image reference (``name[:tag][@digest]``) is malformed."""


class EnvironmentUnavailableError(BuildError):
    """A required capability (root, runc, overlayfs, a tool) is missing."""


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGHUP, ...), unwinding like Ctrl-C so that containers, mounts
    and temporary directories are cleaned up; the process then exits ``128 + signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


E = TypeVar("E", bound=BuildError)


def with_span(err: E, span: Span) -> E:
    """Attach ``span`` to ``err`` unless it already has one (BuildKit's WithLocation)."""
    if err.span is None:
        err.span = span
    return err


def span_order(span: Span | None) -> tuple[int, int]:
    """The sort key that puts errors and findings in file order (no span first)."""
    return (0, 0) if span is None else (span.line, span.column)


class Level(enum.Enum):
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostic:
    """A lint finding or warning: collected into results, never raised."""

    level: Level
    rule: str
    message: str
    span: Span | None = None
    url: str | None = field(default=None)
