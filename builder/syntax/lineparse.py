"""BuildKit's per-instruction argument splitting ("line parsers"), exact to the byte.

Given an instruction keyword and the text after its flags, produce the ``Next`` values BuildKit's
parser would produce, and whether the arguments were in JSON (exec) form. Flag words are split
here too. Nothing is expanded or validated beyond what BuildKit's parser itself rejects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from builder.syntax.gotext import (
    GO_BYTE_SPACE,
    GO_SPACE,
    RE_WHITESPACE,
    byte_view,
    from_byte_view,
    go_quote,
    trim_space,
)


class LineSyntaxError(Exception):
    """An argument error BuildKit's parser reports; located by the caller."""


NOT_STRING_ARRAY = "when using JSON array syntax, arrays must be comprised of strings only"

Args = tuple[tuple[str, ...], bool]  # (values, is_json)


# Leading flag words that BuildKit's byte walk in extractBuilderFlags copies unchanged: ``--`` and
# one or more printable ASCII characters other than quotes, backslash and backtick (so nothing to
# unquote or unescape whatever the escape character), each followed by ASCII blanks or the end.
# A lone ``--`` (which ends the flags) is not matched, so it takes the exact walk.
_PLAIN_FLAGS = re.compile(r"(?:--[!#-&(-\[\]-_a-~]+(?:[\t\n\v\f\r ]+|\Z))+")


# What may start the text after the leading flags for the walk to stop there: not a space byte.
# U+DC85 and U+DCA0 are the undecodable bytes 0x85 and 0xA0, which BuildKit takes for spaces
# (the first byte of a non-ASCII character never is one).
_NOT_AFTER_FLAGS = frozenset(GO_BYTE_SPACE + "\udc85\udca0")


def extract_flags(line: str, escape: str) -> tuple[list[str], str]:
    """BuildKit's ``extractBuilderFlags``: leading ``--flag`` words and the rest of the line."""
    if not line.startswith("--"):
        if line and line[0] not in _NOT_AFTER_FLAGS:
            return [], line  # fast path: the first word is not a flag
    else:
        plain = _PLAIN_FLAGS.match(line)
        # Fast path: the plain words are all flags if the walk stops after them, i.e. the next
        # word does not start with "--" (a flag needing the exact walk) or with a space byte.
        if plain is not None:
            end = plain.end()
            if not line.startswith("--", end) and line[end : end + 1] not in _NOT_AFTER_FLAGS:
                return plain.group().split(), line[end:]
    return _extract_flags_exact(line, escape)


def _extract_flags_exact(line: str, escape: str) -> tuple[list[str], str]:
    """The exact walk of ``extractBuilderFlags``.

    BuildKit walks the UTF-8 bytes here, each byte taken as a rune; the byte view reproduces
    that, including how non-ASCII flag values come out.
    """
    view = byte_view(line)
    words: list[str] = []
    n = len(view)
    pos = 0
    while True:
        while pos < n and view[pos] in GO_BYTE_SPACE:
            pos += 1
        if pos == n:
            return words, ""
        if not view.startswith("--", pos):
            return words, from_byte_view(view[pos:])
        buf: list[str] = []
        blank_ok = False
        quote = ""
        while pos < n:
            ch = view[pos]
            if quote:
                if ch == quote:
                    quote = ""
                    pos += 1
                    continue
                if ch == escape:
                    if pos + 1 == n:
                        quote = ""
                        pos += 1
                        continue
                    pos += 1
                    ch = view[pos]
                buf.append(ch)
                pos += 1
                continue
            if ch in GO_BYTE_SPACE:
                break
            if ch in "'\"":
                quote = ch
                blank_ok = True
                pos += 1
                continue
            if ch == escape:
                if pos + 1 == n:
                    pos += 1
                    continue
                pos += 1
                ch = view[pos]
            buf.append(ch)
            pos += 1
        word = "".join(buf)
        if pos == n:
            if word != "--" and (blank_ok or word):
                words.append(word)
            return words, ""
        if word == "--":
            return words, from_byte_view(view[pos:])
        if blank_ok or word:
            words.append(word)


def _word_pattern(escape: str) -> re.Pattern[str]:
    """One word of ``parseWords`` as a regex, for text that does not end in the escape character.

    A word is a run of: a character that is not a blank, quote or escape; the escape character
    and the character after it; a double-quoted part, where the escape character also keeps the
    next character; a single-quoted part, where it is literal. An unclosed quote runs to the end.
    Blanks are Go's ``unicode.IsSpace``. Only an escape character at the very end is dropped by
    BuildKit, which a regex match cannot express; that case takes the exact loop.
    """
    e = re.escape(escape)
    space = re.escape(GO_SPACE)
    return re.compile(
        rf"""(?:[^"'{e}{space}]|{e}.|"(?:[^"{e}]|{e}.)*(?:"|\Z)|'[^']*(?:'|\Z))+""", re.S
    )


_WORDS_BACKSLASH = _word_pattern("\\").findall
_WORDS_BACKTICK = _word_pattern("`").findall


def parse_words(rest: str, escape: str) -> list[str]:
    """BuildKit's ``parseWords``: split on whitespace, keeping quotes and escapes verbatim."""
    if not rest.endswith(escape):
        return _WORDS_BACKSLASH(rest) if escape == "\\" else _WORDS_BACKTICK(rest)
    return _parse_words_exact(rest, escape)


def _parse_words_exact(rest: str, escape: str) -> list[str]:
    """The exact loop of ``parseWords`` (see :func:`_word_pattern` for the fast path)."""
    words: list[str] = []
    n = len(rest)
    pos = 0
    while True:
        while pos < n and rest[pos] in GO_SPACE:
            pos += 1
        if pos == n:
            return words
        buf: list[str] = []
        blank_ok = False
        quote = ""
        while pos < n:
            ch = rest[pos]
            if quote:
                if ch == quote:
                    quote = ""
                elif ch == escape and quote != "'":
                    if pos + 1 == n:
                        quote = ""
                        pos += 1
                        continue
                    buf.append(ch)
                    pos += 1
                    ch = rest[pos]
                buf.append(ch)
                pos += 1
                continue
            if ch in GO_SPACE:
                break
            if ch in "'\"":
                quote = ch
                blank_ok = True
            if ch == escape:
                if pos + 1 == n:
                    pos += 1
                    continue
                buf.append(ch)
                pos += 1
                ch = rest[pos]
            buf.append(ch)
            pos += 1
        if blank_ok or buf:
            words.append("".join(buf))


def _reject_constant(name: str) -> object:
    raise ValueError(name)


_SURROGATE = re.compile("[\ud800-\udfff]")
# json.loads(text, parse_constant=...) builds a decoder per call; this one is built once (it
# keeps no state between calls).
_JSON_DECODE = json.JSONDecoder(parse_constant=_reject_constant).decode


def parse_json(rest: str) -> tuple[str, ...] | None:
    """A JSON array of strings, ``None`` if ``rest`` is not JSON; raises on non-strings."""
    rest = rest.lstrip(GO_SPACE)  # Go's TrimLeftFunc(unicode.IsSpace), inlined
    if not rest.startswith("["):
        return None
    try:
        value = _JSON_DECODE(rest)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, list):
        return None
    for item in value:
        if not isinstance(item, str):
            if isinstance(item, float) and item in (float("inf"), float("-inf")):
                return None  # Go cannot represent it: the whole text is not JSON
            raise LineSyntaxError(NOT_STRING_ARRAY)
    if "".join(value).isascii():
        return tuple(value)
    # Go decodes invalid UTF-8 (a lone surrogate here) as U+FFFD.
    return tuple(_SURROGATE.sub("\ufffd", s) for s in value)


def _maybe_json(rest: str, escape: str) -> Args:
    if rest == "":
        return (), False
    values = parse_json(rest)
    if values is not None:
        return values, True
    return (rest,), False


def _maybe_json_to_list(rest: str, escape: str) -> Args:
    values = parse_json(rest)
    if values is not None:
        return values, True
    return _whitespace_delimited(rest, escape)


def _whitespace_delimited(rest: str, escape: str) -> Args:
    if rest == "":
        return (), False
    return tuple(RE_WHITESPACE.split(rest)), False


def _string(rest: str, escape: str) -> Args:
    if rest == "":
        return (), False
    return (rest,), False


def _name_or_name_val(rest: str, escape: str) -> Args:
    return tuple(parse_words(rest, escape)), False


def _name_val(key: str) -> Callable[[str, str], Args]:
    def parse(rest: str, escape: str) -> Args:
        words = parse_words(rest, escape)
        if not words:
            return (), False
        if "=" not in words[0]:
            parts = RE_WHITESPACE.split(rest, maxsplit=1)
            if len(parts) < 2:
                raise LineSyntaxError(f"{key} must have two arguments")
            return (parts[0], parts[1], ""), False
        out: list[str] = []
        for word in words:
            name, sep, value = word.partition("=")
            if not sep:
                raise LineSyntaxError(
                    f"Syntax error - can't find = in {go_quote(word)}. "
                    "Must be of the form: name=value"
                )
            out += (name, value, "=")
        return tuple(out), False

    return parse


_BYTE_WORD = re.compile(f"[^{re.escape(GO_BYTE_SPACE)}]*")
_BYTE_BLANKS = re.compile(f"[{re.escape(GO_BYTE_SPACE)}]*")


def _health_config(rest: str, escape: str) -> Args:
    # BuildKit splits off the type word at the first byte that is a space taken as a rune.
    view = byte_view(rest)
    sep = _BYTE_WORD.match(view).end()  # type: ignore[union-attr]  # `*` always matches
    if sep == 0:
        return (), False
    nxt = _BYTE_BLANKS.match(view, sep).end()  # type: ignore[union-attr]
    values, is_json = _maybe_json(from_byte_view(view[nxt:]), escape)
    return (from_byte_view(view[:sep]), *values), is_json


def _ignore(rest: str, escape: str) -> Args:
    return ("",), False


LINE_PARSERS: dict[str, Callable[[str, str], Args]] = {
    "add": _maybe_json_to_list,
    "arg": _name_or_name_val,
    "cmd": _maybe_json,
    "copy": _maybe_json_to_list,
    "entrypoint": _maybe_json,
    "env": _name_val("ENV"),
    "expose": _whitespace_delimited,
    "from": _whitespace_delimited,
    "healthcheck": _health_config,
    "label": _name_val("LABEL"),
    "maintainer": _string,
    "run": _maybe_json,
    "shell": _maybe_json,
    "stopsignal": _string,
    "user": _string,
    "volume": _maybe_json_to_list,
    "workdir": _string,
}


def parse_args(keyword: str, rest: str, escape: str) -> Args:
    """Split ``rest`` (already trimmed) for the lower-case ``keyword``; ONBUILD is the caller's."""
    return LINE_PARSERS.get(keyword, _ignore)(rest, escape)


def split_command(line: str, escape: str) -> tuple[str, list[str], str]:
    """BuildKit's ``splitCommand``: keyword, flag words and the trimmed rest."""
    parts = RE_WHITESPACE.split(trim_space(line), maxsplit=1)
    if len(parts) < 2:
        return parts[0], [], ""
    flags, rest = extract_flags(parts[1], escape)
    return parts[0], flags, trim_space(rest)


__all__ = [
    "NOT_STRING_ARRAY",
    "LineSyntaxError",
    "extract_flags",
    "parse_args",
    "parse_json",
    "parse_words",
    "split_command",
]
