"""Path patterns with moby ``patternmatcher`` semantics, ``.dockerignore`` files, Go globs.

Three pattern dialects meet in COPY/ADD and they are kept apart here:

* ``glob_match`` is Go's ``filepath.Match``: ``*`` and ``?`` never cross ``/``, ``[...]``
  classes with ``^`` negation and ``\\`` escapes. COPY sources use it, and every
  ``.dockerignore``/``--exclude`` pattern must be valid for it (moby checks with it).
* ``PatternMatcher`` is moby's patternmatcher: patterns are anchored at the root, ``**``
  matches any number of directories, ``!pat`` re-includes, the last matching pattern wins, and
  a path matches when it or one of its parent directories does.
* ``parse_ignore_file`` reads a ``.dockerignore`` like moby's ``ignorefile.ReadAll``.

Deliberate differences from moby: a character class is translated with ``filepath.Match``
meaning (moby pastes its text into a Go regexp, so ``[*]`` is mangled there), and ``\\x``
outside a class always means the literal ``x`` (moby's regexp reads ``\\d`` as a digit).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from builder.errors import ContextError
from builder.fs import paths

# Go's unicode.IsSpace, which strings.TrimSpace uses (str.strip also trims \x1c-\x1f).
_GO_SPACE: Final = "\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(
    chr(c) for c in range(0x2000, 0x200B)
)
_UTF8_BOM: Final = "\ufeff"
MAX_IGNORE_LINE: Final = 64 * 1024  # bufio.Scanner's default token limit
_WILDCARDS: Final = frozenset("*?[")


class BadPatternError(ValueError):
    """A pattern that Go's ``filepath.Match`` rejects (``syntax error in pattern``)."""


def go_trim_space(text: str) -> str:
    return text.strip(_GO_SPACE)


def has_wildcards(name: str) -> bool:
    """Whether ``name`` has an unescaped ``*``, ``?`` or ``[`` (BuildKit's containsWildcards)."""
    i = 0
    while i < len(name):
        ch = name[i]
        if ch == "\\":
            i += 2
            continue
        if ch in _WILDCARDS:
            return True
        i += 1
    return False


# --- Go filepath.Match -------------------------------------------------------------------------


def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    """Split off leading stars and the literal-ish chunk up to the next unbracketed ``*``."""
    stripped = pattern.lstrip("*")
    star = len(stripped) != len(pattern)
    in_class = False
    i = 0
    while i < len(stripped):
        ch = stripped[i]
        if ch == "\\":
            if i + 1 < len(stripped):
                i += 1
        elif ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        elif ch == "*" and not in_class:
            break
        i += 1
    return star, stripped[:i], stripped[i:]


def _class_char(chunk: str, i: int) -> tuple[str, int]:
    """One (possibly escaped) character of a class; something must follow it."""
    if i >= len(chunk) or chunk[i] in "-]":
        raise BadPatternError
    if chunk[i] == "\\":
        i += 1
        if i >= len(chunk):
            raise BadPatternError
    ch = chunk[i]
    i += 1
    if i >= len(chunk):
        raise BadPatternError
    return ch, i


def _parse_class(chunk: str, i: int) -> tuple[bool, tuple[tuple[str, str], ...], int]:
    """Parse a class starting after ``[``; returns (negated, ranges, index after ``]``)."""
    negated = False
    if i < len(chunk) and chunk[i] == "^":
        negated = True
        i += 1
    ranges: list[tuple[str, str]] = []
    while True:
        if i < len(chunk) and chunk[i] == "]" and ranges:
            return negated, tuple(ranges), i + 1
        lo, i = _class_char(chunk, i)
        hi = lo
        if chunk[i] == "-":
            hi, i = _class_char(chunk, i + 1)
        ranges.append((lo, hi))


def _match_chunk(chunk: str, s: str) -> str | None:
    """Match ``chunk`` (no ``*``) at the start of ``s``; the rest of ``s``, or None."""
    failed = False
    i = j = 0
    while i < len(chunk):
        if not failed and j >= len(s):
            failed = True
        ch = chunk[i]
        if ch == "[":
            current = None if failed else s[j]
            if not failed:
                j += 1
            negated, ranges, i = _parse_class(chunk, i + 1)
            hit = current is not None and any(lo <= current <= hi for lo, hi in ranges)
            if hit == negated:
                failed = True
            continue
        if ch == "?":
            if not failed:
                if s[j] == "/":
                    failed = True
                j += 1
            i += 1
            continue
        if ch == "\\":
            i += 1
            if i >= len(chunk):
                raise BadPatternError
            ch = chunk[i]
        if not failed:
            if s[j] != ch:
                failed = True
            j += 1
        i += 1
    return None if failed else s[j:]


def glob_match(pattern: str, name: str) -> bool:
    """Go's ``filepath.Match(pattern, name)``; a malformed pattern raises ``BadPatternError``."""
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return "/" not in name
        rest = _match_chunk(chunk, name)
        if rest is not None and (not rest or pattern):
            name = rest
            continue
        if star:
            advanced = False
            for i, ch in enumerate(name):
                if ch == "/":
                    break
                rest = _match_chunk(chunk, name[i + 1 :])
                if rest is not None:
                    if not pattern and rest:
                        continue
                    name = rest
                    advanced = True
                    break
            if advanced:
                continue
        # No match: the rest of the pattern must still be well-formed (Go 1.16+).
        while pattern:
            _, chunk, pattern = _scan_chunk(pattern)
            _match_chunk(chunk, "")
        return False
    return not name


def validate_glob(pattern: str) -> None:
    """Raise ``BadPatternError`` unless ``filepath.Match`` accepts ``pattern``."""
    glob_match(pattern, ".")


# --- moby patternmatcher -----------------------------------------------------------------------


class MatchKind(enum.Enum):
    EXACT = "exact"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    REGEXP = "regexp"


def _class_regex(negated: bool, ranges: tuple[tuple[str, str], ...]) -> str:
    def esc(ch: str) -> str:
        return ch if ch.isalnum() else "\\" + ch

    body = "".join(esc(lo) if lo == hi else f"{esc(lo)}-{esc(hi)}" for lo, hi in ranges)
    return f"[{'^' if negated else ''}{body}]"


@dataclass(frozen=True, slots=True, kw_only=True)
class Pattern:
    """One compiled pattern; ``text`` is cleaned and without the ``!`` of an exception."""

    text: str
    exclusion: bool
    kind: MatchKind
    regex: re.Pattern[str] | None = None

    def matches(self, path: str) -> bool:
        match self.kind:
            case MatchKind.EXACT:
                return path == self.text
            case MatchKind.PREFIX:
                return path.startswith(self.text[:-2])
            case MatchKind.SUFFIX:
                suffix = self.text[2:]
                if path.endswith(suffix):
                    return True
                return suffix.startswith("/") and path == suffix[1:]
            case MatchKind.REGEXP:
                assert self.regex is not None
                return self.regex.fullmatch(path) is not None


def _compile(text: str, exclusion: bool) -> Pattern:
    """Translate a cleaned pattern the way patternmatcher's ``compile`` classifies it."""
    kind = MatchKind.EXACT
    out: list[str] = []
    i = 0
    first = True
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "*" and i + 1 < n and text[i + 1] == "*":
            i += 2
            if i < n and text[i] == "/":
                i += 1
            if i >= n:
                if kind is MatchKind.EXACT:
                    kind = MatchKind.PREFIX
                else:
                    out.append(".*")
                    kind = MatchKind.REGEXP
            else:
                out.append("(?:.*/)?")
                kind = MatchKind.REGEXP
            if first:
                kind = MatchKind.SUFFIX
        elif ch == "*":
            out.append("[^/]*")
            kind = MatchKind.REGEXP
            i += 1
        elif ch == "?":
            out.append("[^/]")
            kind = MatchKind.REGEXP
            i += 1
        elif ch == "\\":
            if i + 1 < n:
                out.append(re.escape(text[i + 1]))
                kind = MatchKind.REGEXP
                i += 2
            else:
                out.append(re.escape(ch))
                i += 1
        elif ch == "[":
            negated, ranges, i = _parse_class(text, i + 1)
            out.append(_class_regex(negated, ranges))
            kind = MatchKind.REGEXP
        else:
            out.append(re.escape(ch))
            i += 1
        first = False
    regex = None
    if kind is MatchKind.REGEXP:
        try:
            regex = re.compile("".join(out))
        except re.error as exc:
            raise BadPatternError(str(exc)) from None
    return Pattern(text=text, exclusion=exclusion, kind=kind, regex=regex)


# A MatchInfo is, per pattern, whether the path or one of its parents matched that pattern.
MatchInfo = tuple[bool, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PatternMatcher:
    """An ordered pattern list (moby ``patternmatcher.PatternMatcher``)."""

    patterns: tuple[Pattern, ...]

    @classmethod
    def compile(cls, patterns: Iterable[str], *, what: str = "pattern") -> PatternMatcher:
        """Build a matcher (moby ``New``); an invalid pattern raises ``ContextError``.

        ``what`` names the pattern list in the message, e.g. ``.dockerignore`` or
        ``--exclude``.
        """
        compiled: list[Pattern] = []
        for raw in patterns:
            text = go_trim_space(raw)
            if not text:
                continue
            text = paths.clean(text)
            exclusion = text.startswith("!")
            if exclusion:
                if len(text) == 1:
                    raise ContextError(f'{what}: illegal exclusion pattern: "!"')
                text = text[1:]
            try:
                validate_glob(text)
                compiled.append(_compile(text, exclusion))
            except BadPatternError:
                raise ContextError(
                    f"{what}: invalid pattern {raw!r}: syntax error in pattern"
                ) from None
        return cls(patterns=tuple(compiled))

    @property
    def exclusions(self) -> bool:
        """Whether any pattern is a ``!`` exception."""
        return any(p.exclusion for p in self.patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def may_reinclude_below(self, directory: str) -> bool:
        """Whether a ``!`` exception could re-include something below excluded ``directory``.

        False lets a walker skip the directory (fsutil's ``onlyPrefixExcludeExceptions``
        shortcut): every exception is a plain path (after dropping a trailing ``/*`` or
        ``/**``) and none of them lies below ``directory``.
        """
        exceptions = [p.text for p in self.patterns if p.exclusion]
        if not exceptions:
            return False
        prefix = directory.rstrip("/") + "/"
        for text in exceptions:
            plain = text.removesuffix("/**").removesuffix("/*")
            if any(c in plain for c in "*[]?^\\"):
                return True
            if (plain + "/").startswith(prefix):
                return True
        return False

    def matches_or_parent_matches(self, path: str) -> bool:
        """moby ``MatchesOrParentMatches``: every pattern is tried on the path and its parents."""
        matched = False
        parents = path.split("/")[:-1]
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.matches(path) or any(
                pattern.matches("/".join(parents[: k + 1])) for k in range(len(parents))
            )
            if hit:
                matched = not pattern.exclusion
        return matched

    def match(self, path: str, parent: MatchInfo | None = None) -> tuple[bool, MatchInfo]:
        """moby ``MatchesUsingParentResults``: the verdict for ``path`` and its MatchInfo.

        ``parent`` is the MatchInfo of the parent directory, or None for a top-level path or
        when unknown (then the parent directories are tried directly). This is what BuildKit's
        context walker and its copier use.
        """
        matched = False
        info = [False] * len(self.patterns)
        for idx, pattern in enumerate(self.patterns):
            hit = parent[idx] if parent else False
            if not hit:
                if pattern.exclusion != matched:
                    continue
                hit = pattern.matches(path)
                if not hit and not parent and "/" in path:
                    parents = path.split("/")[:-1]
                    hit = any(
                        pattern.matches("/".join(parents[: k + 1])) for k in range(len(parents))
                    )
            info[idx] = hit
            if hit:
                matched = not pattern.exclusion
        return matched, tuple(info)

    def walk_match(self, path: str) -> bool:
        """The verdict the context walker reaches for ``path``, walking down from the root."""
        info: MatchInfo | None = None
        matched = False
        comps = path.split("/")
        for k in range(1, len(comps) + 1):
            matched, info = self.match("/".join(comps[:k]), info)
        return matched


def parse_ignore_file(data: bytes | str) -> tuple[str, ...]:
    """The patterns of a ``.dockerignore`` (moby ``ignorefile.ReadAll``).

    A UTF-8 BOM is dropped; a line starting with ``#`` (column 1) is a comment; lines are
    trimmed, blank ones skipped; a pattern is cleaned and a leading ``/`` removed, also after
    ``!``.
    """
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    text = text.removeprefix(_UTF8_BOM)
    out: list[str] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, 1):
        line = line.removesuffix("\r")
        if len(line.encode("utf-8", "surrogateescape")) > MAX_IGNORE_LINE:
            raise ContextError(f"line {number} is longer than {MAX_IGNORE_LINE} bytes")
        if line.startswith("#"):
            continue
        pattern = go_trim_space(line)
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = go_trim_space(pattern[1:])
        if pattern:
            pattern = paths.clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        out.append("!" + pattern if invert else pattern)
    return tuple(out)


def load_ignore_file(data: bytes | str, *, name: str) -> PatternMatcher:
    """Parse and compile an ignore file; errors name the file and the bad pattern."""
    try:
        patterns = parse_ignore_file(data)
    except ContextError as exc:
        raise ContextError(f"{name}: {exc.message}") from None
    return PatternMatcher.compile(patterns, what=name)
