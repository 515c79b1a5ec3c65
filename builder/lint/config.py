"""Which checks run and whether a finding fails the build: BuildKit's check options.

The value of the ``# check=`` directive and of the ``BUILDKIT_DOCKERFILE_CHECK`` build arg:
``skip=Rule1,Rule2`` or ``skip=all``, ``error=true|false``, ``experimental=Rule|all``, separated
by ``;``. The build arg, when given, replaces the directive (BuildKit's ``newRuleLinter``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from builder.errors import BuildError
from builder.lint.rules import Rule
from builder.syntax.gotext import go_quote, trim_space
from builder.units import parse_bool


class CheckOptionError(BuildError):
    """A check option that BuildKit's ``ParseLintOptions`` rejects."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckConfig:
    skip_all: bool = False
    skip: frozenset[str] = frozenset()
    experimental_all: bool = False
    experimental: frozenset[str] = frozenset()
    error: bool = False

    def merged(self, other: CheckConfig) -> CheckConfig:
        """BuildKit's ``WithMergedConfig``: ``other`` adds skips and experiments, not ``error``."""
        return CheckConfig(
            skip_all=self.skip_all or other.skip_all,
            skip=self.skip | other.skip,
            experimental_all=self.experimental_all or other.experimental_all,
            experimental=self.experimental | other.experimental,
            error=self.error,
        )

    def enabled(self, rule: Rule) -> bool:
        """BuildKit's ``Linter.Run``: experimental rules are opt-in and cannot be skipped."""
        if rule.experimental:
            return self.experimental_all or rule.name in self.experimental
        return not (self.skip_all or rule.name in self.skip)


def _rule_list(value: str) -> frozenset[str]:
    return frozenset(trim_space(name) for name in value.split(","))


def parse_check_options(text: str) -> CheckConfig:
    """BuildKit's ``linter.ParseLintOptions``; raises :class:`CheckOptionError`."""
    text = trim_space(text)
    if not text:
        return CheckConfig()
    skip_all = experimental_all = error = False
    skip: frozenset[str] = frozenset()
    experimental: frozenset[str] = frozenset()
    for part in text.split(";", 2):
        key, eq, value = part.partition("=")
        if not eq:
            raise CheckOptionError(f"invalid check option {go_quote(part)}")
        key = trim_space(key)
        value = trim_space(value)
        match key:
            case "skip":
                if value == "all":
                    skip_all = True
                else:
                    skip = _rule_list(value)
            case "experimental":
                if value == "all":
                    experimental_all = True
                else:
                    experimental = _rule_list(value)
            case "error":
                flag = parse_bool(value)
                if flag is None:
                    raise CheckOptionError(
                        f"failed to parse check option {go_quote(part)}: "
                        f"strconv.ParseBool: parsing {go_quote(value)}: invalid syntax"
                    )
                error = flag
            case _:
                raise CheckOptionError(f"invalid check option {go_quote(key)}")
    return CheckConfig(
        skip_all=skip_all,
        skip=skip,
        experimental_all=experimental_all,
        experimental=experimental,
        error=error,
    )


# BuildKit's DirectiveParser with an empty comment prefix, applied to a comment's text.
_COMMENT_DIRECTIVE = re.compile(
    r"[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z", re.S
)


def with_comments(config: CheckConfig, comments: tuple[str, ...]) -> CheckConfig:
    """BuildKit's ``WithMergedConfigFromComments``: the first ``check=`` comment above an
    instruction adds to ``config`` for that instruction (text after a space is ignored)."""
    for comment in comments:
        match = _COMMENT_DIRECTIVE.match(comment)
        if match is None or match.group(1).lower() != "check":
            continue
        try:
            local = parse_check_options(match.group(2).partition(" ")[0])
        except CheckOptionError:
            return config
        return config.merged(local)
    return config


__all__ = ["CheckConfig", "CheckOptionError", "parse_check_options", "with_comments"]
