"""Image history entries exactly as BuildKit writes them, and the Go formatting they need.

BuildKit's Dockerfile frontend appends one history entry per instruction (ONBUILD excepted) with
the comment ``buildkit.dockerfile.v0``; RUN and COPY/ADD entries end in ``" # buildkit"``.
The ``created_by`` text is built with Go's ``fmt`` verbs: ``%v`` of a string slice is
``[a b]``, ``%q`` is ``["a" "b"]``, ``%+v`` of the healthcheck struct names every field and
prints durations with ``time.Duration.String``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from builder.oci.types import History
from builder.syntax import ir
from builder.syntax.gotext import go_quote

HISTORY_COMMENT = "buildkit.dockerfile.v0"
BUILDKIT_SUFFIX = " # buildkit"


def entry(created_by: str, *, layer: bool, suffix: bool = False) -> History:
    """One history entry; ``suffix`` for steps BuildKit commits with a state (RUN, COPY)."""
    if suffix:
        created_by += BUILDKIT_SUFFIX
    return History(created_by=created_by, comment=HISTORY_COMMENT, empty_layer=not layer)


def go_list(items: Iterable[str]) -> str:
    """Go's ``%v`` of a ``[]string``."""
    return "[" + " ".join(items) + "]"


def go_quoted_list(items: Iterable[str]) -> str:
    """Go's ``%q`` of a ``[]string``."""
    return "[" + " ".join(go_quote(i) for i in items) + "]"


def _frac(value: int, digits: int) -> str:
    """``value / 10**digits`` with the fraction's trailing zeros (and a bare dot) dropped."""
    scale = 10**digits
    whole, rest = divmod(value, scale)
    if rest == 0:
        return str(whole)
    return f"{whole}.{str(rest).rjust(digits, '0').rstrip('0')}"


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String`` (``1m30s``, ``1h0m0s``, ``1.5s``, ``500ms``, ``0s``)."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{_frac(u, 3)}µs"
    if u < 1_000_000_000:
        return f"{sign}{_frac(u, 6)}ms"
    seconds_ns = u % 60_000_000_000
    minutes_total = u // 60_000_000_000
    text = _frac(seconds_ns, 9) + "s"
    if minutes_total:
        hours, minutes = divmod(minutes_total, 60)
        text = f"{minutes}m{text}"
        if hours:
            text = f"{hours}h{text}"
    return sign + text


def healthcheck_text(health: ir.Healthcheck) -> str:
    """Go's ``%+v`` of ``dockerspec.HealthcheckConfig``."""
    return (
        f"{{Test:{go_list(health.test)} Interval:{go_duration(health.interval)} "
        f"Timeout:{go_duration(health.timeout)} StartPeriod:{go_duration(health.start_period)} "
        f"StartInterval:{go_duration(health.start_interval)} Retries:{health.retries}}}"
    )


def run_command_string(
    args: Iterable[str],
    build_args: Iterable[tuple[str, str | None]],
    env: Mapping[str, str],
) -> str:
    """BuildKit's ``runCommandString``: ``|N K=V ... argv`` with the ARGs in scope.

    Each ARG declared so far (inherited from a base stage too) appears once, at its first
    declaration, with its current value in the environment (an ENV of the same name wins),
    else its declared value, else empty.
    """
    values: dict[str, str] = {}
    for key, declared in build_args:
        value = env.get(key)
        if value is None:
            value = declared or ""
        values[key] = value  # dict keeps the first position, takes the last value
    words = [f"{k}={v}" for k, v in values.items()]
    if words:
        words.insert(0, f"|{len(words)}")
    words.extend(args)
    return " ".join(words)


def copy_created_by(
    *,
    is_add: bool,
    parents: bool,
    chown: str | None,
    chmod: str | None,
    sources: Iterable[str],
    inline_names: Iterable[str],
    dest: str,
) -> str:
    """``COPY [--parents] [--chown=..] [--chmod=..] src... <<heredoc... dest`` (no suffix)."""
    parts = ["ADD" if is_add else "COPY"]
    if parents:
        parts.append("--parents")
    if chown:
        parts.append(f"--chown={chown}")
    if chmod:
        parts.append(f"--chmod={chmod}")
    parts.extend(sources)
    parts.extend(f"<<{name}" for name in inline_names)
    parts.append(dest)
    return " ".join(parts)


__all__ = [
    "BUILDKIT_SUFFIX",
    "HISTORY_COMMENT",
    "copy_created_by",
    "entry",
    "go_duration",
    "go_list",
    "go_quoted_list",
    "healthcheck_text",
    "run_command_string",
]
