"""Go string semantics that BuildKit's parser relies on, for exact conformance.

Go's ``unicode.IsSpace`` differs from Python's ``str.isspace`` (Python also counts U+001C-U+001F),
and some of BuildKit's scanners walk the UTF-8 *bytes* of a line, treating each byte as a rune. The
"byte view" of a string (its UTF-8 bytes decoded as Latin-1) reproduces that exactly.
"""

from __future__ import annotations

import re

GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# unicode.IsSpace applied to a single byte taken as a rune.
GO_BYTE_SPACE = "\t\n\v\f\r \x85\xa0"
# BuildKit's reWhitespace: `[\t\v\f\r ]+`.
RE_WHITESPACE = re.compile(r"[\t\v\f\r ]+")


def trim_space(s: str) -> str:
    """Go's ``strings.TrimSpace``."""
    return s.strip(GO_SPACE)


def trim_left_space(s: str) -> str:
    return s.lstrip(GO_SPACE)


def byte_view(s: str) -> str:
    """The UTF-8 bytes of ``s`` as Latin-1 characters (identity for ASCII).

    U+DC80..U+DCFF stand for undecodable bytes (``surrogateescape``). Any other lone surrogate
    has no UTF-8 form; it is taken as its 3-byte encoding (bytes Go would see as invalid).
    """
    if s.isascii():
        return s
    try:
        return s.encode("utf-8", "surrogateescape").decode("latin-1")
    except UnicodeEncodeError:
        return "".join(
            c.encode("utf-8", "surrogatepass").decode("latin-1")
            if "\ud800" <= c <= "\udfff" and not "\udc80" <= c <= "\udcff"
            else c.encode("utf-8", "surrogateescape").decode("latin-1")
            for c in s
        )


def from_byte_view(s: str) -> str:
    """Inverse of :func:`byte_view`."""
    if s.isascii():
        return s
    return s.encode("latin-1").decode("utf-8", "surrogateescape")


def utf8_len(s: str) -> int:
    if s.isascii():
        return len(s)
    return len(s.encode("utf-8", "surrogateescape"))


def is_name_char(ch: str) -> bool:
    """A character of a shell variable or template name: Go's ``unicode.IsLetter(ch) ||
    unicode.IsDigit(ch) || ch == '_'``."""
    return ch == "_" or ch.isalpha() or ch.isdecimal()


def go_quote(s: str) -> str:
    """Go's ``strconv.Quote`` (used by BuildKit's dump and error messages)."""
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return f'"{s}"'
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif 0xDC80 <= o <= 0xDCFF:  # an undecodable byte kept by surrogateescape
            out.append(f"\\x{o - 0xDC00:02x}")
        elif 0xD800 <= o <= 0xDFFF:
            out.append("\\ufffd")
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif o < 0x80:
            out.append(f"\\x{o:02x}")
        elif o <= 0xFFFF:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}
