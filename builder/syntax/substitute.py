"""Variable substitution on IR instructions, with BuildKit's choice of what is expanded.

BuildKit expands an instruction's words just before it dispatches the step, with the variables
(ENV and in-scope ARGs) as they are *before* that instruction: every value of ``ENV A=1 B=$A``
sees the old ``A``. :func:`substitute` does the same for one instruction and returns a new one.

Expanded: ADD and COPY (sources, destination, ``--chown``, ``--chmod``, ADD's ``--checksum``,
and heredoc bodies whose delimiter is unquoted, processed with quotes kept), ENV and LABEL (keys
and values), ARG (names and defaults), EXPOSE (each word, split again into words), FROM (base
and ``--platform``; the caller passes the global ARGs), STOPSIGNAL, USER, VOLUME, WORKDIR and
the option values of ``RUN --mount``. Not expanded: the commands of RUN, CMD, ENTRYPOINT and
HEALTHCHECK (the shell does that), SHELL, MAINTAINER, ONBUILD, ``--exclude``, ``--network``,
``--security``. ``COPY --from`` and ``--mount from=`` refuse variables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TypeVar, assert_never, cast

from builder.errors import BuildError, InvalidInstructionError, with_span
from builder.syntax import ir
from builder.syntax.expand import Lexer
from builder.syntax.mounts import parse_mount
from builder.syntax.transform import COPY_FROM_VARIABLE, from_has_variables

InstrT = TypeVar("InstrT", bound=ir.Instruction)


class _Words:
    """Expansion of single words against one environment, skipping words with nothing to do."""

    __slots__ = ("_env", "_lexer", "_raw_lexer", "escape")

    def __init__(self, env: Mapping[str, str], escape: str) -> None:
        self._env = env
        self.escape = escape
        self._lexer = Lexer(escape=escape)
        self._raw_lexer = Lexer(escape="\\", skip_process_quotes=True)

    def _plain(self, word: str) -> bool:
        return (
            "$" not in word
            and "'" not in word
            and '"' not in word
            and self.escape not in word
            and not word.startswith("\ufeff")
        )

    def word(self, word: str) -> str:
        if self._plain(word):
            return word
        return self._lexer.process_word(word, self._env)

    def optional(self, word: str | None) -> str | None:
        return None if word is None else self.word(word)

    def words(self, word: str) -> list[str]:
        return self._lexer.process_words(word, self._env)

    def each(self, words: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(self.word(w) for w in words)

    def raw(self, data: str) -> str:
        """A heredoc body: backslash escapes, quotes kept (BuildKit's ``ExpandRaw``)."""
        if "$" not in data and "\\" not in data and not data.startswith("\ufeff"):
            return data
        return self._raw_lexer.process_word(data, self._env)


def substitute(instr: InstrT, env: Mapping[str, str], *, escape: str = "\\") -> InstrT:
    """``instr`` with its expandable words expanded against ``env`` (which is not changed).

    Raises :class:`~builder.errors.ExpansionError` for a bad substitution and
    :class:`~builder.errors.InvalidInstructionError` for what BuildKit rejects after expansion
    (a blank FROM base, an empty VOLUME, an invalid ``--mount`` value, ``COPY --from=$X``);
    both carry the instruction's span.
    """
    try:
        return cast(InstrT, _substitute(instr, _Words(env, escape)))
    except BuildError as err:
        raise with_span(err, instr.span) from None


def _substitute(node: ir.Instruction, w: _Words) -> ir.Instruction:
    match node:
        case ir.From():
            base = w.word(node.base)
            if base == "":
                raise InvalidInstructionError(f"base name ({node.base}) should not be blank")
            return replace(node, base=base, platform=w.optional(node.platform))
        case ir.Run():
            if not any(m.dynamic for m in node.mounts):
                return node
            expand: Callable[[str], str] = w.word
            mounts = tuple(
                parse_mount(m.spec, escape=w.escape, expand=expand) if m.dynamic else m
                for m in node.mounts
            )
            return replace(node, mounts=mounts)
        case ir.Copy():
            if node.from_ is not None and from_has_variables(node.from_, w.escape):
                raise InvalidInstructionError(COPY_FROM_VARIABLE)
            return replace(
                node,
                sources=w.each(node.sources),
                dest=w.word(node.dest),
                chown=w.optional(node.chown),
                chmod=w.optional(node.chmod),
                heredocs=_inline(node.heredocs, w),
            )
        case ir.Add():
            return replace(
                node,
                sources=w.each(node.sources),
                dest=w.word(node.dest),
                chown=w.optional(node.chown),
                chmod=w.optional(node.chmod),
                checksum=w.optional(node.checksum),
                heredocs=_inline(node.heredocs, w),
            )
        case ir.Env():
            return replace(node, pairs=_pairs(node.pairs, w))
        case ir.Label():
            return replace(node, pairs=_pairs(node.pairs, w))
        case ir.Arg():
            return replace(
                node,
                args=tuple(
                    ir.ArgDecl(key=w.word(a.key), default=w.optional(a.default)) for a in node.args
                ),
            )
        case ir.Expose():
            return replace(node, ports=tuple(p for port in node.ports for p in w.words(port)))
        case ir.Volume():
            paths = w.each(node.paths)
            if "" in paths:
                raise InvalidInstructionError("VOLUME specified can not be an empty string")
            return replace(node, paths=paths)
        case ir.User():
            return replace(node, user=w.word(node.user))
        case ir.Workdir():
            return replace(node, path=w.word(node.path))
        case ir.StopSignal():
            return replace(node, signal=w.word(node.signal))
        case (
            ir.Cmd()
            | ir.Entrypoint()
            | ir.Shell()
            | ir.Healthcheck()
            | ir.Maintainer()
            | ir.OnBuild()
        ):
            return node
        case _:
            assert_never(node)


def _pairs(pairs: tuple[ir.KeyValue, ...], w: _Words) -> tuple[ir.KeyValue, ...]:
    return tuple(
        ir.KeyValue(key=w.word(p.key), value=w.word(p.value), legacy=p.legacy) for p in pairs
    )


def _inline(sources: tuple[ir.InlineSource, ...], w: _Words) -> tuple[ir.InlineSource, ...]:
    return tuple(replace(s, data=w.raw(s.data)) if s.expand else s for s in sources)


__all__ = ["substitute"]
