"""Shell patterns of ``${v#p} ${v%p} ${v/p/r} ${v//p/r}``, matched as BuildKit matches them.

Used by :mod:`builder.syntax.expand`; independent of the word lexer. Two failures:
:class:`PatternError` (an invalid pattern, BuildKit's message) and :class:`ResultTooLarge` (a
replacement result past the caller's ``max_size``).
"""

from __future__ import annotations

import functools
import re
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Final

from builder.syntax.gotext import is_name_char

__all__ = [
    "Glob",
    "PatternError",
    "ResultTooLarge",
    "compile_glob",
    "replace_all",
    "replace_first",
    "trim_prefix",
    "trim_suffix",
]


class PatternError(Exception):
    """An invalid pattern; the message is BuildKit's."""


class ResultTooLarge(Exception):
    """A replacement grew past the caller's size limit."""


class _BadPattern(Exception):
    """Why a pattern is invalid (wrapped into :class:`PatternError` with the pattern)."""


_EOF_RUNE: Final = "\ufffd"  # what Go prints for its EOF marker formatted as a character


# -- shell patterns ------------------------------------------------------------------------------
#
# BuildKit turns a pattern into a Go regexp (``*`` -> ``.*`` or ``.*?``, ``?`` -> ``.``, ``^`` when
# anchored) and takes the leftmost-first match. Here a pattern is parsed into fixed-width
# *segments* separated by stars (adjacent stars merged: they match the same spans). When at most
# one star has to be searched from a fixed start, Python's ``re`` gives the same leftmost-first
# match in O(n * width). Otherwise a backtracking engine could take O(n^k) time, so the match is
# computed from a table of where each segment can start (see ``_Searcher``).


@dataclass(frozen=True, slots=True, kw_only=True)
class Glob:
    segments: tuple[str, ...]  # regex source per segment ("" for an empty one)
    widths: tuple[int, ...]
    literals: tuple[str | None, ...]  # the segment text when it has no '?'
    greedy: bool
    anchored: bool
    regex: re.Pattern[str] | None  # the whole pattern, when backtracking is cheap
    finders: tuple[re.Pattern[str], ...]  # (?=segment): every start of a segment


def compile_glob(pattern: str, *, greedy: bool, anchored: bool) -> Glob:
    """The pattern as BuildKit reads it; :class:`PatternError` when it is invalid."""
    try:
        if len(pattern) <= 4096:
            return _cached_glob(pattern, greedy, anchored)
        return _build_glob(pattern, greedy, anchored)
    except _BadPattern as err:
        raise PatternError(f"invalid pattern ({pattern}) in substitution: {err}") from None


_ANY: Final = r"[^\n]"


def _build_glob(pattern: str, greedy: bool, anchored: bool) -> Glob:
    """Parse a shell pattern like BuildKit's ``convertShellPatternToRegex``."""
    # Each segment is a list of characters, None standing for '?'.
    segments: list[list[str | None]] = [[]]
    n = len(pattern)
    i = 1 if pattern.startswith("\ufeff") else 0  # Go's scanner skips a leading BOM
    while i < n:
        tok = pattern[i]
        i += 1
        if tok == "*":
            if segments[-1] or len(segments) == 1:
                segments.append([])
            continue
        if tok == "?":
            segments[-1].append(None)
            continue
        if tok == "\\":
            if i < n and pattern[i] in "}/":
                continue  # an escaped '}' or '/' of the ${} syntax: the escape is not pattern
            tok = pattern[i] if i < n else _EOF_RUNE
            i += 1
            if tok not in "*?\\":
                raise _BadPattern(f"invalid escape '\\{tok}'")
        segments[-1].append(tok)
    sources = tuple("".join(_ANY if c is None else re.escape(c) for c in seg) for seg in segments)
    literals = tuple(
        None if None in seg else "".join(c for c in seg if c is not None) for seg in segments
    )
    regex: re.Pattern[str] | None = None
    if len(segments) == 1:
        regex = re.compile(sources[0])
    elif len(segments) == 2 and anchored:
        regex = re.compile(sources[0] + (_ANY + "*" if greedy else _ANY + "*?") + sources[1])
    return Glob(
        segments=sources,
        widths=tuple(len(seg) for seg in segments),
        literals=literals,
        greedy=greedy,
        anchored=anchored,
        regex=regex,
        finders=tuple(re.compile(f"(?={src})") for src in sources),
    )


_cached_glob: Final = functools.lru_cache(maxsize=256)(_build_glob)


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern but keep each ``\\x`` pair in order (BuildKit's ``reversePattern``)."""
    last = len(pattern) - 1
    out = [""] * len(pattern)
    i = 0
    while i <= last:
        tok = pattern[i]
        if tok == "\\" and i != last:
            out[last - i - 1] = tok
            out[last - i] = pattern[i + 1]
            i += 2
        else:
            out[last - i] = tok
            i += 1
    return "".join(out)


def trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    """``${v#p}`` (``greedy``: ``${v##p}``)."""
    glob = compile_glob(pattern, greedy=greedy, anchored=True)
    if glob.regex is not None:
        m = glob.regex.match(value)
        return value if m is None else value[m.end() :]
    end = _Searcher(glob, value).match_at_start()
    return value if end is None else value[end:]


def trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    """``${v%p}`` (``greedy``: ``${v%%p}``)."""
    # A regexp finds leftmost matches only, so search the reversed value with the reversed
    # pattern (the error message then shows the reversed pattern, as BuildKit's does).
    return trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


class _Searcher:
    """Leftmost-first matching of a ``Glob`` on one value without backtracking.

    With segments ``s0 * s1 * ... * sk`` (stars match runs without a newline), ``starts[i]``
    lists the positions ``p`` where ``si`` matches and the rest ``* s(i+1) ...`` can still match
    from ``p + width(si)`` (``None``: every position, for an empty last segment). A lazy star
    then takes the first such position on its line, a greedy star the last; that is exactly the
    choice a backtracking engine (and Go's RE2, which reproduces it) ends with.
    """

    __slots__ = ("glob", "n", "newlines", "starts", "value")

    def __init__(self, glob: Glob, value: str) -> None:
        self.glob = glob
        self.value = value
        self.n = len(value)
        k = len(glob.segments) - 1
        starts: list[array[int] | None] = [None] * (k + 1)
        self.starts = starts
        self.newlines: array[int] = array("q")
        if k == 0 or glob.regex is not None:
            return
        self.newlines.extend(m.start() for m in re.finditer("\n", value))
        for i in range(k, 0, -1):
            if i == k and glob.widths[k] == 0:
                continue
            starts[i] = self.occurrences(i, last=i == k)
        if not glob.anchored and glob.widths[0] > 0:
            starts[0] = self.occurrences(0, last=False)

    def occurrences(self, i: int, *, last: bool) -> array[int]:
        width = self.glob.widths[i]
        lit = self.glob.literals[i]
        value = self.value
        positions: array[int] = array("q")
        if lit is not None:
            find = value.find
            p = find(lit)
            while p >= 0:
                if last or self.feasible(i + 1, p + width):
                    positions.append(p)
                p = find(lit, p + 1)
            return positions
        for m in self.glob.finders[i].finditer(value):
            p = m.start()
            if last or self.feasible(i + 1, p + width):
                positions.append(p)
        return positions

    def line_end(self, q: int) -> int:
        nl = self.newlines
        j = bisect_left(nl, q)
        return nl[j] if j < len(nl) else self.n

    def line_start(self, p: int) -> int:
        j = bisect_left(self.newlines, p)
        return self.newlines[j - 1] + 1 if j > 0 else 0

    def feasible(self, i: int, q: int) -> bool:
        """Can ``* s(i) * ... * sk`` match from ``q``?"""
        arr = self.starts[i]
        if arr is None:
            return True
        j = bisect_left(arr, q)
        return j < len(arr) and arr[j] <= self.line_end(q)

    def finish(self, i: int, q: int) -> int | None:
        """End of the first match of ``* s(i) * ... * sk`` from ``q``."""
        k = len(self.glob.segments) - 1
        lazy = not self.glob.greedy
        while True:
            arr = self.starts[i]
            end = self.line_end(q)
            if arr is None:
                p = q if lazy else end
            elif lazy:
                j = bisect_left(arr, q)
                if j == len(arr) or arr[j] > end:
                    return None
                p = arr[j]
            else:
                j = bisect_right(arr, end) - 1
                if j < 0 or arr[j] < q:
                    return None
                p = arr[j]
            q = p + self.glob.widths[i]
            if i == k:
                return q
            i += 1

    def match_at_start(self) -> int | None:
        glob = self.glob
        if glob.regex is not None:
            m = glob.regex.match(self.value)
            return None if m is None else m.end()
        if glob.widths[0] and glob.finders[0].match(self.value) is None:
            return None
        return self.finish(1, glob.widths[0])

    def search(self, start: int) -> tuple[int, int] | None:
        """The leftmost-first match starting at or after ``start``."""
        glob = self.glob
        if glob.regex is not None:
            m = glob.regex.search(self.value, start)
            return None if m is None else m.span()
        if glob.widths[0]:
            arr = self.starts[0]
            assert arr is not None
            j = bisect_left(arr, start)
            if j == len(arr):
                return None
            begin = arr[j]
            end = self.finish(1, begin + glob.widths[0])
        else:
            arr = self.starts[1]
            if arr is None:
                begin = start
            else:
                j = bisect_left(arr, start)
                if j == len(arr):
                    return None
                begin = max(start, self.line_start(arr[j]))
            end = self.finish(1, begin)
        assert end is not None  # guaranteed by the feasibility tables
        return begin, end


def replace_first(glob: Glob, value: str, replacement: str, max_size: int) -> str:
    """``${v/p/r}``: the leftmost match replaced by ``replacement``, inserted literally."""
    span = _Searcher(glob, value).search(0)
    if span is None:
        return value
    result = value[: span[0]] + replacement + value[span[1] :]
    if len(result) > max_size:
        raise ResultTooLarge
    return result


def replace_all(glob: Glob, value: str, template: str, max_size: int) -> str:
    """``${v//p/r}``: Go's ``Regexp.ReplaceAllString`` (the template may use ``$0``/``${0}``
    and ``$$``)."""
    parts = _parse_template(template)
    if glob.regex is not None and len(glob.segments) == 1:
        # Fixed-width matches: Python's substitution loop visits the same matches as Go's.
        width = glob.widths[0]
        per_match = sum(width if p is None else len(p) for p in parts)
        limit = 0 if per_match == 0 else max_size // per_match + 1
        if None in parts:
            result, count = glob.regex.subn(lambda m: _fill(parts, m.group()), value, limit)
        else:
            text = "".join(p for p in parts if p is not None)
            result, count = glob.regex.subn(lambda _m: text, value, limit)
        if (limit and count == limit) or len(result) > max_size:
            raise ResultTooLarge
        return result
    searcher = _Searcher(glob, value)
    out: list[str] = []
    size = 0
    last = 0
    pos = 0
    n = len(value)
    while pos <= n:
        span = searcher.search(pos)
        if span is None:
            break
        begin, end = span
        out.append(value[last:begin])
        size += begin - last
        if end > last or begin == 0:  # no empty match right after the previous match
            piece = _fill(parts, value[begin:end])
            out.append(piece)
            size += len(piece)
            if size > max_size:
                raise ResultTooLarge
        last = end
        pos = pos + 1 if end <= pos else end
    out.append(value[last:])
    return "".join(out)


def _fill(parts: tuple[str | None, ...], match: str) -> str:
    return "".join(match if p is None else p for p in parts)


def _parse_template(template: str) -> tuple[str | None, ...]:
    """Split a Go replacement template into literal text and ``None`` for the whole match.

    Go's ``Regexp.Expand``: ``$$`` is ``$``; ``$name``/``${name}`` is a capture group (only
    ``0`` exists here; others expand to nothing); a ``$`` not followed by a valid name is
    literal.
    """
    parts: list[str | None] = []
    lit: list[str] = []
    n = len(template)
    i = 0
    while True:
        j = template.find("$", i)
        if j < 0:
            break
        lit.append(template[i:j])
        i = j + 1
        if i < n and template[i] == "$":
            lit.append("$")
            i += 1
            continue
        brace = i < n and template[i] == "{"
        start = end = i + 1 if brace else i
        while end < n and is_name_char(template[end]):
            end += 1
        if end == start or (brace and (end == n or template[end] != "}")):
            lit.append("$")
            continue
        name = template[start:end]
        i = end + 1 if brace else end
        if name == "0":
            parts.append("".join(lit))
            lit = []
            parts.append(None)
    lit.append(template[i:])
    parts.append("".join(lit))
    return tuple(p for p in parts if p != "")
