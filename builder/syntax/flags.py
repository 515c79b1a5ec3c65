"""Instruction flags (``--name=value``) with BuildKit's ``BFlags`` rules and messages.

An instruction declares the flags it accepts, then :meth:`BFlags.parse` checks the words the
parser extracted::

    bf = BFlags(node.flags)
    chown = bf.add_string("chown")
    link = bf.add_bool("link")
    bf.parse()          # raises InvalidInstructionError; bf.error_index says which word

Flag kinds: booleans (``--x``, ``--x=true``, ``--x=false``, any case), strings (exactly once)
and repeatable strings. Also here: BuildKit's "did you mean" search (``util/suggest``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

from builder.errors import InvalidInstructionError


class FlagKind(enum.Enum):
    BOOL = "bool"
    STRING = "string"
    STRINGS = "strings"


class Flag:
    """One declared flag and, after parsing, its value(s)."""

    __slots__ = ("default", "indices", "kind", "name", "used", "value", "values")

    def __init__(self, name: str, kind: FlagKind, default: str) -> None:
        self.name = name
        self.kind = kind
        self.default = default
        self.value = default
        self.values: list[str] = []
        self.indices: list[int] = []  # positions of the words that set this flag
        self.used = False

    @property
    def is_true(self) -> bool:
        return self.value == "true"

    @property
    def given(self) -> str | None:
        """The value when the flag was given, else ``None``."""
        return self.value if self.used else None


class BFlags:
    """The flags of one instruction: declare with ``add_*``, then :meth:`parse` once."""

    __slots__ = ("_flags", "_used", "args", "error_index")

    def __init__(self, args: Sequence[str]) -> None:
        self.args = args
        self._flags: dict[str, Flag] = {}
        self._used: list[str] = []
        self.error_index: int | None = None  # the word an error is about

    def add_bool(self, name: str, default: bool = False) -> Flag:
        return self._add(name, FlagKind.BOOL, "true" if default else "false")

    def add_string(self, name: str, default: str = "") -> Flag:
        return self._add(name, FlagKind.STRING, default)

    def add_strings(self, name: str) -> Flag:
        return self._add(name, FlagKind.STRINGS, "")

    def _add(self, name: str, kind: FlagKind, default: str) -> Flag:
        if name in self._flags:  # a programming error, not a Dockerfile one
            raise ValueError(f"Duplicate flag defined: {name}")
        flag = Flag(name, kind, default)
        self._flags[name] = flag
        return flag

    def used(self) -> tuple[str, ...]:
        """Names of the flags given, in order of first use."""
        return tuple(self._used)

    def parse(self) -> None:
        for index, word in enumerate(self.args):
            if word == "--":
                return
            self.error_index = index
            if not word.startswith("--"):
                raise InvalidInstructionError(f"arg should start with -- : {word}")
            flag_name, sep, value = word.partition("=")
            has_value = bool(sep)
            name = flag_name[2:]
            flag = self._flags.get(name)
            if flag is None:
                message = f"unknown flag: {flag_name}"
                guess = suggest(name, self._flags, case_sensitive=True)
                if guess is None:
                    raise InvalidInstructionError(message)
                raise InvalidInstructionError(
                    f"{message} (did you mean {guess}?)", hint=f"did you mean {guess}?"
                )
            if flag.used and flag.kind is not FlagKind.STRINGS:
                raise InvalidInstructionError(f"duplicate flag specified: {flag_name}")
            if not flag.used:
                flag.used = True
                self._used.append(name)
            match flag.kind:
                case FlagKind.BOOL:
                    if has_value and value == "":
                        raise InvalidInstructionError(f"missing a value on flag: {flag_name}")
                    lowered = value.lower()
                    if lowered in ("true", ""):
                        flag.value = "true"
                    elif lowered == "false":
                        flag.value = "false"
                    else:
                        raise InvalidInstructionError(
                            f"expecting boolean value for flag {flag_name}, not: {value}"
                        )
                case FlagKind.STRING:
                    if not has_value:
                        raise InvalidInstructionError(f"missing a value on flag: {flag_name}")
                    flag.value = value
                case FlagKind.STRINGS:
                    if not has_value:
                        raise InvalidInstructionError(f"missing a value on flag: {flag_name}")
                    flag.values.append(value)
            flag.indices.append(index)
        self.error_index = None


def levenshtein(a: str, b: str) -> int:
    """Edit distance with unit costs (insert, delete, substitute), over characters."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _match_case(option: str, original: str) -> str:
    if original == original.lower():
        return option.lower()
    if original == original.upper():
        return option.upper()
    return option


def suggest(value: str, options: Iterable[str], *, case_sensitive: bool) -> str | None:
    """BuildKit's ``suggest.Search``: the closest option at distance < 3, unless one is exact.

    Ties go to the option met first (BuildKit iterates a Go map, so its choice is random).
    """
    needle = value if case_sensitive else value.lower()
    best: str | None = None
    best_distance = 3
    for option in options:
        candidate = option if case_sensitive else option.lower()
        if candidate == needle:
            return None
        if abs(len(candidate) - len(needle)) >= best_distance:
            continue
        distance = levenshtein(needle, candidate)
        if distance < best_distance:
            best = candidate if case_sensitive else _match_case(candidate, value)
            best_distance = distance
    return best


__all__ = ["BFlags", "Flag", "FlagKind", "levenshtein", "suggest"]
