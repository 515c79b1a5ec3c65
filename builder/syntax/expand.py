"""Shell-word processing with BuildKit's semantics (``frontend/dockerfile/shell/lex.go``).

:class:`Lexer` expands ``$v ${v} ${v:-w} ${v-w} ${v:+w} ${v+w} ${v:?msg} ${v?msg} ${v#p} ${v##p}
${v%p} ${v%%p} ${v/p/r} ${v//p/r}``, removes quotes, applies the escape character (``\\`` or a
backtick) and splits words, exactly as BuildKit does on Unix (case-sensitive variable names). The
golden tables ``shell/envVarTest`` and ``shell/wordsTest`` are the reference.

Points of BuildKit behaviour that are easy to miss, all reproduced on purpose:

* ``$1``, ``$001``: a name starting with a digit is the run of digits. ``$@ $* $# $? $- $$ $! $0``
  are one-character names, never set unless the environment has them.
* A lone ``$`` (``$.``, ``$`` at the end) is literal. A leading U+FEFF of the word is dropped
  (Go's ``text/scanner`` skips a BOM).
* The word of ``-``, ``+`` and ``?`` is processed with escapes applied; the word of ``#``, ``%``
  and both parts of ``/`` keep their escapes, which the shell pattern then interprets (``\\*``,
  ``\\?``, ``\\\\``; a ``\\`` before ``}`` or ``/`` is dropped; any other escape is an error).
* In patterns ``*`` and ``?`` never match a newline (Go's ``.``). ``${v//p/r}`` expands ``$0``
  ``${0}`` (the match) and ``$$`` in ``r`` like Go's ``Regexp.ReplaceAllString``; ``${v/p/r}``
  inserts ``r`` literally.
* With ``skip_unset_env`` an unset variable is written back as ``$name``/``${name}`` or, for a
  modifier, ``${name<modifier><processed word>}``.
* Word splitting (:meth:`Lexer.process_words`): since BuildKit v0.15 every ``${...}`` with a
  modifier resets the pending word, because BuildKit shares one word buffer between nesting
  levels. ``process_words("a${x:-b}")`` is therefore ``["b"]``, not ``["ab"]``. The heredoc
  detection of the parser (``heredocsFromLine``) and EXPOSE depend on this, so it is kept.
* ``<<`` plus following blanks is kept as one raw piece of a word (heredoc markers).

Limits (BuildKit has none; these keep hostile input cheap):

* :data:`MAX_NESTING` = 100 nested ``${...}`` words (``${a:-${b:-...}}``); deeper input fails
  with "expansion too deep". The scanner recurses at most a few Python frames per level.
* :data:`MAX_SIZE` = 16 MiB (characters) for the input word, for every intermediate and final
  result, and for a value that a ``#``/``%``/``/`` pattern is applied to; beyond it the expansion
  fails with "too large".
* Pattern matching never uses backtracking on more than one ``*``: patterns with several stars
  (and unanchored ``/`` searches) run on a segment index in O(n log n), so ``${v%%*x}`` or
  ``${v//a*b*c/}`` on a long value cost linear time, not exponential.

Deliberate deviations: a ``${name`` that ends right after the name reports
"syntax error: missing '}'" (BuildKit prints "unsupported modifier (\\ufffd) in substitution",
reading its EOF marker as a character); in error messages a word longer than 1024 characters is
shown cut short. Character classes follow Python's Unicode tables (``isalpha``/``isdecimal`` for
Go's ``unicode.IsLetter``/``IsDigit``), which may differ for characters newer than one of them.

Every failure raises :class:`builder.errors.ExpansionError` whose message is BuildKit's text,
``failed to process "<word>": <reason>``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from builder.errors import ExpansionError
from builder.syntax import shellpattern
from builder.syntax.gotext import GO_SPACE, go_quote, is_name_char

__all__ = ["MAX_NESTING", "MAX_SIZE", "Lexer", "WordResult"]

MAX_NESTING: Final = 100
MAX_SIZE: Final = 16 * 1024 * 1024

_QUOTE_LIMIT: Final = 1024
_SPECIAL_PARAMS: Final = frozenset("@*#?-$!0")
_MISSING_BRACE: Final = "syntax error: missing '}'"

_SPACES: Final = frozenset(GO_SPACE)
_SPACE_CLASS: Final = re.escape(GO_SPACE)
_HAS_SPACE: Final = re.compile(f"[{_SPACE_CLASS}]").search
_NON_SPACE_RUNS: Final = re.compile(f"[^{_SPACE_CLASS}]+").finditer
_ASCII_NAME: Final = re.compile(r"[A-Za-z0-9_]+").match
_ASCII_DIGITS: Final = re.compile(r"[0-9]+").match
# Fast path for the common ``$name`` / ``${name}`` with an ASCII name. A non-ASCII character after
# ``$name`` could still be part of the name (Go's unicode.IsLetter), so it takes the slow path.
_SIMPLE_REF: Final = re.compile(
    r"\$(?:([A-Za-z_][A-Za-z0-9_]*)(?![^\x00-\x7f])|\{([A-Za-z_][A-Za-z0-9_]*)\})"
).match


@dataclass(frozen=True, slots=True, kw_only=True)
class WordResult:
    result: str
    words: tuple[str, ...]
    matched: frozenset[str]  # variable names that were found in env
    unmatched: frozenset[str]  # variable names referenced but not set


@dataclass(frozen=True, slots=True, kw_only=True)
class Lexer:
    """BuildKit's ``shell.Lex``: a configuration; every call is independent."""

    escape: str = "\\"  # "\\" or "`"
    raw_quotes: bool = False  # keep the quote characters in the output
    raw_escapes: bool = False  # keep the escape characters in the output
    skip_process_quotes: bool = False  # quotes are ordinary characters
    skip_unset_env: bool = False  # leave references to unset variables as written

    def __post_init__(self) -> None:
        if self.escape not in ("\\", "`"):
            raise ExpansionError(f"invalid escape token '{self.escape}' does not match ` or \\")

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """Expand ``word`` into one string (BuildKit's ``ProcessWord``)."""
        return _process(self, word, env, capture=False, want_words=False)[0]

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """Expand ``word`` and split it into words (BuildKit's ``ProcessWords``)."""
        return _process(self, word, env, capture=False, want_words=True)[1]

    def process_word_with_matches(self, word: str, env: Mapping[str, str]) -> WordResult:
        """Expand ``word``; also report which variables were found and which were not."""
        result, words, matched, unmatched = _process(self, word, env, capture=True, want_words=True)
        return WordResult(
            result=result,
            words=tuple(words),
            matched=frozenset(matched),
            unmatched=frozenset(unmatched),
        )


class _LexError(Exception):
    """An expansion failure inside one call; ``fatal`` ones are never rewritten."""

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.fatal = fatal


def _too_large() -> _LexError:
    return _LexError(f"expansion result too large: more than {MAX_SIZE} characters", fatal=True)


def _process(
    lexer: Lexer, word: str, env: Mapping[str, str], *, capture: bool, want_words: bool
) -> tuple[str, list[str], set[str], set[str]]:
    try:
        if len(word) > MAX_SIZE:
            raise _LexError(f"word too long: {len(word)} characters, limit {MAX_SIZE}")
        if _plain_re(lexer.escape, lexer.skip_process_quotes).search(word) is None:
            # Nothing to expand: the word is itself, its words the runs of non-blanks.
            text = word[1:] if word.startswith("\ufeff") else word
            words = [m.group() for m in _NON_SPACE_RUNS(text)] if want_words else []
            return text, words, set(), set()
        run = _Run(lexer, word, env, capture)
        if word.startswith("\ufeff"):
            run.pos = 1
        words = []
        result = run.stop_on("", lexer.raw_escapes, words if want_words else None)
        if len(result) > MAX_SIZE:
            raise _too_large()
    except _LexError as err:
        raise ExpansionError(f"failed to process {_quote_word(word)}: {err.message}") from err
    return result, words, run.matched, run.unmatched


def _quote_word(word: str) -> str:
    if len(word) <= _QUOTE_LIMIT:
        return go_quote(word)
    return f"{go_quote(word[:_QUOTE_LIMIT])}... ({len(word)} characters)"


@functools.lru_cache(maxsize=16)
def _plain_re(escape: str, skip_quotes: bool) -> re.Pattern[str]:
    """Characters that make a word need the scanner (anything else is copied as-is)."""
    chars = "$<" + escape + ("" if skip_quotes else "'\"")
    return re.compile(f"[{re.escape(chars)}]")


@functools.lru_cache(maxsize=32)
def _special_re(escape: str, stop: str, skip_quotes: bool) -> re.Pattern[str]:
    """Characters that end a run of ordinary characters in ``_Run.stop_on``."""
    chars = "$<" + escape + stop + ("" if skip_quotes else "'\"")
    return re.compile(f"[{re.escape(chars)}]")


@functools.lru_cache(maxsize=4)
def _double_quote_re(escape: str) -> re.Pattern[str]:
    return re.compile(f"[{re.escape(chr(34) + '$' + escape)}]")


def _add_string(buf: list[str], words: list[str], in_word: bool, text: str) -> bool:
    """BuildKit's ``wordsStruct.addString``: blanks end the pending word (if it has text).

    ``buf`` holds the pieces of the pending word (never empty strings); returns the new
    ``inWord`` flag. A blank while ``inWord`` is set but the buffer is empty does nothing.
    """
    if len(text) == 1:
        if text not in _SPACES:
            buf.append(text)
            return True
        if in_word and buf:
            words.append("".join(buf))
            buf.clear()
            return False
        return in_word
    if _HAS_SPACE(text) is None:
        if text:
            buf.append(text)
            return True
        return in_word
    end = 0
    for m in _NON_SPACE_RUNS(text):
        if m.start() > end and in_word and buf:
            words.append("".join(buf))
            buf.clear()
            in_word = False
        buf.append(m.group())
        in_word = True
        end = m.end()
    if end < len(text) and in_word and buf:
        words.append("".join(buf))
        buf.clear()
        in_word = False
    return in_word


class _Run:
    """The scanner state of one ``process_*`` call (BuildKit's ``shellWord``)."""

    __slots__ = (
        "buf",
        "capture",
        "depth",
        "env",
        "esc",
        "matched",
        "n",
        "pos",
        "raw_escapes",
        "raw_quotes",
        "skip_quotes",
        "skip_unset",
        "src",
        "unmatched",
    )

    def __init__(self, lexer: Lexer, src: str, env: Mapping[str, str], capture: bool) -> None:
        self.src = src
        self.n = len(src)
        self.pos = 0
        self.env = env
        self.esc = lexer.escape
        self.raw_quotes = lexer.raw_quotes
        self.raw_escapes = lexer.raw_escapes
        self.skip_quotes = lexer.skip_process_quotes
        self.skip_unset = lexer.skip_unset_env
        self.capture = capture
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()
        self.depth = 0
        # BuildKit's shellWord.wordsBuffer: the pending word, shared by all nesting levels.
        self.buf: list[str] = []

    # -- the main loop -------------------------------------------------------------------------

    def stop_on(self, stop: str, raw_escapes: bool, words: list[str] | None) -> str:
        """Process up to ``stop`` (consumed) or the end of input when ``stop`` is ``""``.

        ``words`` collects the split words at the top level; nested calls pass ``None`` (their
        words are discarded by BuildKit) but still reset the shared word buffer.
        """
        saved_raw = self.raw_escapes
        self.raw_escapes = raw_escapes
        buf = self.buf
        buf.clear()
        in_word = False
        out: list[str] = []
        size = 0
        src, n, esc = self.src, self.n, self.esc
        search = _special_re(esc, stop, self.skip_quotes).search
        pos = self.pos
        while pos < n:
            m = search(src, pos)
            nxt = n if m is None else m.start()
            if nxt > pos:
                chunk = src[pos:nxt]
                out.append(chunk)
                size += nxt - pos
                if words is not None:
                    in_word = _add_string(buf, words, in_word, chunk)
                pos = nxt
                if pos == n:
                    break
            ch = src[pos]
            if ch == stop:
                self.pos = pos + 1
                self.raw_escapes = saved_raw
                if buf:
                    if words is not None:
                        words.append("".join(buf))
                    buf.clear()
                return "".join(out)
            if ch == esc:
                pos += 1
                if raw_escapes:
                    out.append(esc)
                    size += 1
                    if words is not None:
                        buf.append(esc)
                        in_word = True
                if pos == n:  # an escape at the very end is dropped
                    break
                ch = src[pos]
                pos += 1
                out.append(ch)
                size += 1
                if words is not None:
                    buf.append(ch)
                    in_word = True
                continue
            if ch == "$":
                ref = _SIMPLE_REF(src, pos)
                if ref is not None:
                    tmp = self.simple_ref(ref)
                    pos = ref.end()
                else:
                    self.pos = pos
                    tmp = self.dollar()
                    pos = self.pos
                if words is not None:
                    in_word = _add_string(buf, words, in_word, tmp)
                out.append(tmp)
                size += len(tmp)
                if size > MAX_SIZE:
                    raise _too_large()
                continue
            self.pos = pos
            if ch == "<":
                tmp = self.heredoc_marker()
            elif ch == "'":
                tmp = self.single_quote()
            else:  # '"'
                tmp = self.double_quote()
            if words is not None:
                if tmp:
                    buf.append(tmp)
                in_word = True
            pos = self.pos
            out.append(tmp)
            size += len(tmp)
            if size > MAX_SIZE:
                raise _too_large()
        self.pos = n
        self.raw_escapes = saved_raw
        if stop:
            raise _LexError(f"unexpected end of statement while looking for matching {stop}")
        if buf:
            if words is not None:
                words.append("".join(buf))
            buf.clear()
        return "".join(out)

    def nested(self, stop: str, raw_escapes: bool, eof_message: str) -> str:
        """A word inside ``${...}``; any failure at the end of input becomes ``eof_message``."""
        if self.depth >= MAX_NESTING:
            raise _LexError(
                f"expansion too deep: more than {MAX_NESTING} nested ${{...}} substitutions",
                fatal=True,
            )
        self.depth += 1
        try:
            return self.stop_on(stop, raw_escapes, None)
        except _LexError as err:
            if not err.fatal and self.pos >= self.n:
                raise _LexError(eof_message) from None
            raise
        finally:
            self.depth -= 1

    # -- quotes and heredoc markers ------------------------------------------------------------

    def single_quote(self) -> str:
        start = self.pos + 1
        end = self.src.find("'", start)
        if end < 0:
            self.pos = self.n
            raise _LexError("unexpected end of statement while looking for matching single-quote")
        self.pos = end + 1
        if self.raw_quotes:
            return self.src[start - 1 : end + 1]
        return self.src[start:end]

    def double_quote(self) -> str:
        src, n, esc = self.src, self.n, self.esc
        out: list[str] = ['"'] if self.raw_quotes else []
        size = 0
        search = _double_quote_re(esc).search
        pos = self.pos + 1
        while True:
            m = search(src, pos)
            if m is None:
                self.pos = n
                raise _LexError(
                    "unexpected end of statement while looking for matching double-quote"
                )
            nxt = m.start()
            if nxt > pos:
                out.append(src[pos:nxt])
            ch = src[nxt]
            if ch == '"':
                if self.raw_quotes:
                    out.append('"')
                self.pos = nxt + 1
                return "".join(out)
            if ch == "$":
                ref = _SIMPLE_REF(src, nxt)
                if ref is not None:
                    tmp = self.simple_ref(ref)
                    pos = ref.end()
                else:
                    self.pos = nxt
                    tmp = self.dollar()
                    pos = self.pos
                out.append(tmp)
                size += len(tmp)
                if size > MAX_SIZE:
                    raise _too_large()
                continue
            # the escape character: it only escapes '"', '$' and itself
            pos = nxt + 1
            if self.raw_escapes:
                out.append(esc)
            if pos == n:
                self.pos = n
                raise _LexError(
                    "unexpected end of statement while looking for matching double-quote"
                )
            after = src[pos]
            if after in ('"', "$", esc):
                out.append(after)
                pos += 1
            else:
                out.append(esc)

    def heredoc_marker(self) -> str:
        src, n = self.src, self.n
        pos = self.pos + 1
        if pos == n or src[pos] != "<":
            self.pos = pos
            return "<"
        pos += 1
        end = pos
        while end < n and src[end] in "\t\r ":
            end += 1
        self.pos = end
        return "<<" + src[pos:end]

    # -- variables -----------------------------------------------------------------------------

    def lookup(self, name: str) -> str | None:
        value = self.env.get(name)
        if self.capture:
            (self.unmatched if value is None else self.matched).add(name)
        return value

    def simple_ref(self, ref: re.Match[str]) -> str:
        """``$name`` or ``${name}`` matched by ``_SIMPLE_REF`` (same result as ``dollar``)."""
        name = ref.group(1)
        braced = name is None
        if braced:
            name = ref.group(2)
        value = self.env.get(name)
        if self.capture:
            (self.unmatched if value is None else self.matched).add(name)
        if value is not None:
            return value
        if not self.skip_unset:
            return ""
        return "${" + name + "}" if braced else "$" + name

    def name(self) -> str:
        """A variable name at ``pos``: digits, one special parameter, or letters/digits/_."""
        src, n, start = self.src, self.n, self.pos
        if start == n:
            return ""
        ch = src[start]
        end = start
        if ch.isdecimal():
            while end < n:
                m = _ASCII_DIGITS(src, end)
                if m is not None:
                    end = m.end()
                elif src[end].isdecimal():
                    end += 1
                else:
                    break
        elif ch in _SPECIAL_PARAMS:
            end = start + 1
        else:
            while end < n:
                m = _ASCII_NAME(src, end)
                if m is not None:
                    end = m.end()
                elif not src[end].isascii() and is_name_char(src[end]):
                    end += 1
                else:
                    break
        self.pos = end
        return src[start:end]

    def dollar(self) -> str:
        src, n = self.src, self.n
        pos = self.pos + 1
        if pos == n or src[pos] != "{":
            self.pos = pos
            name = self.name()
            if not name:
                return "$"
            value = self.lookup(name)
            if value is None:
                return "$" + name if self.skip_unset else ""
            return value
        pos += 1
        self.pos = pos
        if pos == n:
            raise _LexError(_MISSING_BRACE)
        if src[pos] in "{}:":
            raise _LexError("syntax error: bad substitution")
        name = self.name()
        pos = self.pos
        if pos == n:
            raise _LexError(_MISSING_BRACE)
        ch = src[pos]
        pos += 1
        self.pos = pos
        if ch == "}":
            value = self.lookup(name)
            if value is None:
                return "${" + name + "}" if self.skip_unset else ""
            return value
        if ch == "/":
            return self.replace(name)
        modifier = ch
        null_is_unset = ch == ":"
        if null_is_unset:
            if pos == n:
                raise _LexError(_MISSING_BRACE)
            ch = src[pos]
            self.pos = pos + 1
            modifier = ":" + ch
        elif ch not in "+-?#%":
            raise _LexError(f"unsupported modifier ({modifier}) in substitution")
        pattern_op = ch in "#%"
        if null_is_unset and pattern_op:
            raise _LexError(f"unsupported modifier ({modifier}) in substitution")
        word = self.nested("}", pattern_op, _MISSING_BRACE)
        value = self.lookup(name)
        if value is None and self.skip_unset:
            return "${" + name + modifier + word + "}"
        empty = value is None or (null_is_unset and value == "")
        if ch == "-":
            return word if empty else (value or "")
        if ch == "+":
            return "" if empty else word
        if ch == "?":
            if value is None:
                raise _LexError(f"{name}: {word or 'is not allowed to be unset'}")
            if empty:
                raise _LexError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if pattern_op:
            greedy = word.startswith(ch)
            if greedy:
                word = word[1:]
            subject = _check_subject(value or "")
            trim = shellpattern.trim_suffix if ch == "%" else shellpattern.trim_prefix
            try:
                return trim(word, subject, greedy)
            except shellpattern.PatternError as err:
                raise _LexError(str(err)) from None
        raise _LexError(f"unsupported modifier ({modifier}) in substitution")

    def replace(self, name: str) -> str:
        """``${name/pattern/replacement}`` and ``${name//pattern/replacement}``."""
        replace_all = self.pos < self.n and self.src[self.pos] == "/"
        if replace_all:
            self.pos += 1
        pattern = self.nested("/", True, "syntax error: missing '/' in ${}")
        replacement = self.nested("}", True, _MISSING_BRACE)
        value = self.lookup(name)
        if value is None and self.skip_unset:
            return "${" + name + "/" + pattern + "/" + replacement + "}"
        glob = _glob(pattern, greedy=True, anchored=False)
        subject = _check_subject(value or "")
        try:
            if replace_all:
                return shellpattern.replace_all(glob, subject, replacement, MAX_SIZE)
            return shellpattern.replace_first(glob, subject, replacement, MAX_SIZE)
        except shellpattern.ResultTooLarge:
            raise _too_large() from None


def _check_subject(value: str) -> str:
    if len(value) > MAX_SIZE:
        raise _LexError(
            f"value too large for pattern substitution: {len(value)} characters, limit {MAX_SIZE}",
            fatal=True,
        )
    return value


def _glob(pattern: str, *, greedy: bool, anchored: bool) -> shellpattern.Glob:
    try:
        return shellpattern.compile_glob(pattern, greedy=greedy, anchored=anchored)
    except shellpattern.PatternError as err:
        raise _LexError(str(err)) from None
