"""Parser directives (``# syntax=``, ``# escape=``, ``# check=``) at the top of a Dockerfile."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from builder.syntax.gotext import trim_left_space
from builder.syntax.tree import Directive

VALID_DIRECTIVES = frozenset({"syntax", "escape", "check"})
# Go's RE2 `\s` is ASCII `[\t\n\f\r ]`.
_DIRECTIVE_RE = re.compile(
    r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z", re.S
)


class DirectiveSyntaxError(Exception):
    """Raised inside the syntax package; turned into a located ParseError by the lexer."""


@dataclass(slots=True)
class DirectiveScanner:
    """Recognises directives line by line until the first line that is not one.

    Mutable on purpose: it is the scanning state of one parse and never escapes it.
    """

    done: bool = False
    seen: dict[str, Directive] = field(default_factory=dict)

    def feed(self, line: str, lineno: int) -> Directive | None:
        """``line`` has its newline and leading whitespace removed."""
        if self.done:
            return None
        if not line.startswith("#"):
            self.done = True
            return None
        match = _DIRECTIVE_RE.match(trim_left_space(line[1:]))
        if match is None:
            self.done = True
            return None
        key = match.group(1).lower()
        if key not in VALID_DIRECTIVES:
            self.done = True
            return None
        if key in self.seen:
            raise DirectiveSyntaxError(f"only one {key} parser directive can be used")
        directive = Directive(name=key, value=match.group(2), line=lineno)
        self.seen[key] = directive
        if key == "escape" and directive.value not in ("\\", "`"):
            raise DirectiveSyntaxError(
                f"invalid escape token '{directive.value}' does not match ` or \\"
            )
        return directive
