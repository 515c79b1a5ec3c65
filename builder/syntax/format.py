"""Typed IR -> canonical Dockerfile text (``pybuild fmt``).

:func:`format_dockerfile` writes a :class:`~builder.syntax.ir.Dockerfile` back as text that
parses to the same IR (positions, keyword spelling and ``original`` text aside). The layout is
fixed, so formatting is a fixed point on its own output.

Layout:

* Parser directives first (``# name=value``), then a blank line. A backtick file always gets its
  ``# escape=``` `` directive and every escape the formatter writes is a backtick.
* Global ``ARG``s, then the stages, a blank line before every ``FROM``.
* Keywords upper-case (``AS`` too), one space between words, flags first in a fixed order per
  instruction (:data:`FLAG_ORDER`), always ``--name=value`` (booleans: ``--name`` for true,
  ``--name=false`` only where false differs from absent). A flag value holding a blank, a quote
  or the escape character is written in double quotes with ``"`` and the escape escaped.
* Exec form as JSON, ``["a", "b"]``: ``\\" \\\\ \\n \\t \\r \\b \\f`` and ``\\uXXXX`` for every
  other character Python does not call printable (controls, separators such as U+00A0 and
  U+2028, ...), so Go's ``encoding/json`` reads back the same strings.
* ``ENV``/``LABEL`` always ``key=value``. The words are the raw words of the source (quotes and
  escapes as written, since the IR keeps values unexpanded), so they are written as they are.
  The legacy form ``ENV key the value`` has no such word: it becomes ``key="the value"`` when
  the value holds no quote or escape character, else every blank run outside quotes is put in
  double quotes (``a" "'b c'``). Both expand (BuildKit's ``ProcessWord``) to the same string.
  Only a legacy key holding ``=`` (possible after a U+00A0, see :func:`keeps_legacy_form`) keeps
  the legacy form, since no ``key=value`` word has such a key.
* Shell-form commands (RUN, CMD, ENTRYPOINT, HEALTHCHECK CMD) are never re-flowed: their text
  is written as it is, continued on a new line exactly where the source continued it. The IR
  holds a continued command as one joined string (the parser drops each escape-newline and keeps
  the indentation) plus the offsets of those breaks (``breaks``); the formatter puts an
  escape-newline back at each, so joining gives back the exact string and the same breaks::

      RUN apt-get update \\          (IR: "apt-get update     && apt-get install -y x",
          && apt-get install -y x      breaks (15,))

  A command written on one line stays on one line, blank runs and all (``RUN echo a  b``).
* Words, flags and ``key=value`` pairs go on one line; when that line is longer than
  :data:`LINE_WIDTH`, each flag or pair after the first goes on its own continuation line,
  indented by four spaces (one starting with ``#`` stays on the line before it).
* A lone escape character at the very end of an instruction (the parser keeps one when a
  U+00A0 followed it) is followed by a vertical tab, which stops it from continuing the line
  and which the parser trims away again.
* Heredoc bodies follow their instruction, each closed by its name. RUN keeps its markers as
  written in the command; COPY/ADD markers are written ``<<NAME`` when the body is expanded and
  ``<<"NAME"`` when it is not (bodies are stored with ``<<-`` tabs already removed).
* ``ONBUILD`` + the formatted trigger; a trigger that does not parse is written as stored.
* Comments (given with their source line) are written ``# text`` before the instruction that
  followed them; one inside a continuation goes before that instruction; those after the last
  instruction stay at the end.

IR that no text can express raises :class:`~builder.errors.InvalidInstructionError` (e.g. a
RUN whose heredocs do not match the markers in its command); IR built by the parser never does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import assert_never

from builder.errors import BuildError, InvalidInstructionError, Span, with_span
from builder.syntax import ir
from builder.syntax.directives import DirectiveScanner, DirectiveSyntaxError
from builder.syntax.gotext import GO_BYTE_SPACE, GO_SPACE, from_byte_view, trim_left_space
from builder.syntax.heredoc import HeredocSyntaxError, markers_in_line
from builder.syntax.lineparse import LineSyntaxError, parse_json, parse_words
from builder.syntax.parser import parse
from builder.syntax.transform import to_ir
from builder.syntax.tree import Comment, Directive
from builder.units import format_duration

LINE_WIDTH = 100
INDENT = "    "

# Flags of each instruction, in the order the formatter writes them.
FLAG_ORDER: dict[str, tuple[str, ...]] = {
    "FROM": ("platform",),
    "RUN": ("mount", "network", "security", "device"),
    "COPY": ("from", "chown", "chmod", "link", "parents", "exclude"),
    "ADD": ("chown", "chmod", "link", "keep-git-dir", "checksum", "unpack", "exclude"),
    "HEALTHCHECK": ("interval", "timeout", "start-period", "start-interval", "retries"),
}

_NOWHERE = Span(file="", line=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Text:
    head: str  # the instruction's line(s), without the final newline
    bodies: str = ""  # heredoc bodies and terminator lines, each ending in "\n"


# --------------------------------------------------------------------------- the whole file


def format_dockerfile(
    df: ir.Dockerfile,
    *,
    comments: Sequence[Comment] = (),
    directives: Sequence[Directive] = (),
) -> str:
    """Canonical text of ``df``; ``directives`` default to the IR's own."""
    escape = df.escape
    top = [f"# {d.name}={d.value}\n" for d in effective_directives(df, directives)]
    body: list[str] = []
    pending = sorted(comments, key=lambda c: c.line)
    next_comment = 0
    entries = _entries(df)
    for index, (instr, starts_stage) in enumerate(entries):
        if starts_stage and body:
            body.append("\n")
        end = instr.span.end_line or instr.span.line
        while next_comment < len(pending) and pending[next_comment].line <= end:
            body.append(_comment(pending[next_comment]))
            next_comment += 1
        last = index == len(entries) - 1 and next_comment == len(pending)
        body.append(format_instruction(instr, escape=escape, last=last))
    body.extend(_comment(c) for c in pending[next_comment:])
    if top or (body and _reads_as_directive(body[0])):
        top.append("\n")
    return "".join(top + body)


def effective_directives(
    df: ir.Dockerfile, directives: Sequence[Directive] = ()
) -> tuple[Directive, ...]:
    """The directives the formatter writes: the given ones (else the IR's), escape made exact."""
    chosen = list(directives or df.directives)
    has_escape = any(d.name == "escape" for d in chosen)
    if has_escape or df.escape != "\\":
        if not has_escape:
            chosen.insert(0, Directive(name="escape", value=df.escape, line=0))
        chosen = [replace(d, value=df.escape) if d.name == "escape" else d for d in chosen]
    return tuple(chosen)


def _entries(df: ir.Dockerfile) -> list[tuple[ir.Instruction, bool]]:
    """Every instruction in file order, with whether it starts a stage."""
    entries: list[tuple[ir.Instruction, bool]] = [(a, False) for a in df.global_args]
    for stage in df.stages:
        from_ = stage.from_ or ir.From(
            span=stage.span,
            keyword="FROM",
            original="",
            base=stage.base,
            stage_name=stage.name,
            platform=stage.platform,
        )
        entries.append((from_, True))
        entries.extend((i, False) for i in stage.instructions)
    return entries


def _comment(comment: Comment) -> str:
    return f"# {comment.text}\n" if comment.text else "#\n"


def _reads_as_directive(line: str) -> bool:
    """Whether ``line``, first in a file, would be taken as a parser directive."""
    text = trim_left_space(line.rstrip("\n"))
    if not text.startswith("#"):
        return False
    try:
        return DirectiveScanner().feed(text, 1) is not None
    except DirectiveSyntaxError:
        return True


# --------------------------------------------------------------------------- one instruction


def format_instruction(instr: ir.Instruction, *, escape: str = "\\", last: bool = False) -> str:
    """One instruction as canonical text, heredoc bodies included, ending in a newline.

    ``last``: nothing follows it in the file (see :func:`_dangling_trigger`).
    """
    try:
        text = _render(instr, escape)
        if isinstance(instr, ir.OnBuild) and _continues(text.head, escape):
            return _dangling_trigger(instr, text, escape, last=last)
    except InvalidInstructionError as err:
        raise with_span(err, instr.span) from None
    return text.head + "\n" + text.bodies


def _continues(line: str, escape: str) -> bool:
    """Whether the parser would join the next line to ``line`` (a lone escape at its end)."""
    stripped = line.rstrip(" \t")
    return stripped.endswith(escape) and stripped[-2:-1] != escape


def _dangling_trigger(instr: ir.OnBuild, text: _Text, escape: str, *, last: bool) -> str:
    """An ONBUILD trigger, kept as written, whose text ends in an escape and blanks.

    Only an escape-newline at the very end of a file gives such a line (the escape is dropped,
    the blanks before it kept), so only there can it be written back.
    """
    if not last or text.bodies:
        raise _unformattable(instr, "a trigger ending in an escape is only possible at the end")
    return text.head + escape + "\n"


def _render(instr: ir.Instruction, escape: str) -> _Text:
    match instr:
        case ir.From():
            args = [instr.base]
            if instr.stage_name is not None:
                args += ["AS", instr.stage_name]
            return _Text(head=_line("FROM", _from_flags(instr, escape), [" ".join(args)], escape))
        case ir.Run():
            flags = _run_flags(instr, escape)
            bodies = _run_bodies(instr, flags)
            return _Text(head=_line("RUN", flags, _command(instr, escape), escape), bodies=bodies)
        case ir.Cmd():
            return _Text(head=_line("CMD", [], _command(instr, escape), escape))
        case ir.Entrypoint():
            return _Text(head=_line("ENTRYPOINT", [], _command(instr, escape), escape))
        case ir.Copy() | ir.Add():
            return _render_copy(instr, escape)
        case ir.Env():
            return _Text(head=_line("ENV", [], pair_words(instr.pairs, escape), escape))
        case ir.Label():
            return _Text(head=_line("LABEL", [], pair_words(instr.pairs, escape), escape))
        case ir.Arg():
            return _Text(head=_line("ARG", [], arg_words(instr.args, escape), escape))
        case ir.Expose():
            return _Text(head=_line("EXPOSE", [], [" ".join(_expose_order(instr.ports))], escape))
        case ir.Volume():
            return _Text(head=_line("VOLUME", [], [_path_list(instr.paths)], escape))
        case ir.User():
            return _Text(head=_line("USER", [], [instr.user], escape))
        case ir.Workdir():
            return _Text(head=_line("WORKDIR", [], [instr.path], escape))
        case ir.Shell():
            return _Text(head=_line("SHELL", [], [json_array(instr.shell)], escape))
        case ir.Healthcheck():
            return _render_healthcheck(instr, escape)
        case ir.StopSignal():
            return _Text(head=_line("STOPSIGNAL", [], [instr.signal], escape))
        case ir.Maintainer():
            return _Text(head=_line("MAINTAINER", [], [instr.maintainer], escape))
        case ir.OnBuild():
            if instr.trigger is None:
                first, newline, rest = instr.expression.partition("\n")
                return _Text(head="ONBUILD " + first, bodies=rest + newline)
            inner = _render(instr.trigger, escape)
            return _Text(head="ONBUILD " + inner.head, bodies=inner.bodies)
        case _:
            assert_never(instr)


def _line(keyword: str, flags: Sequence[str], args: Sequence[str], escape: str) -> str:
    """Keyword, flags and argument items, wrapped one item a line when too long."""
    items = list(flags)
    if args and args[0].startswith("--"):
        items.append("--")  # ends the flags: the arguments start with "--" themselves
    items += [a for a in args if a]
    if not items:
        return keyword
    single = " ".join([keyword, *items])
    if len(single.partition("\n")[0]) > LINE_WIDTH and len(items) > 1:
        # (an item starting with "#" stays on the line before: alone it would be a comment)
        single = f"{keyword} {items[0]}" + "".join(
            f" {i}" if i.startswith("#") else f" {escape}\n{INDENT}{i}" for i in items[1:]
        )
    if single.endswith(escape) and single[-2:-1] not in ("", escape):
        # A lone escape at the end would join the next line. A vertical tab stops that and
        # is trimmed away again by the parser, like the blank that kept it apart in the source.
        single += "\v"
    return single


def _unformattable(instr: ir.Instruction, why: str) -> InvalidInstructionError:
    keyword = type(instr).__name__.upper()
    return InvalidInstructionError(f"cannot format {keyword}: {why}", span=instr.span)


# --------------------------------------------------------------------------- flags


def flag_value(value: str, escape: str) -> str:
    """The text of a flag value that BuildKit's flag splitter reads back as ``value``.

    That splitter walks UTF-8 bytes and takes each byte as a character, so the value of
    ``--chown=é`` is ``"Ã©"``: the IR holds flag values in that byte view, and the text is the
    UTF-8 those bytes spell. Quoted only when it holds a blank (byte), quote or escape.
    """
    if any(ord(c) > 0xFF for c in value):
        raise InvalidInstructionError(
            f"flag value {value!r} has a character that no UTF-8 byte spells"
        )
    if any(c in GO_BYTE_SPACE or c in "'\"" or c == escape for c in value):
        value = '"' + value.replace(escape, escape + escape).replace('"', escape + '"') + '"'
    return from_byte_view(value)


def _flag(name: str, value: str, escape: str) -> str:
    return f"--{name}={flag_value(value, escape)}"


def _from_flags(instr: ir.From, escape: str) -> list[str]:
    return [_flag("platform", instr.platform, escape)] if instr.platform else []


def run_flags_written(run: ir.Run) -> tuple[str, ...]:
    """Names of the flags the formatter writes for ``run`` (its ``flags_used`` after a reparse)."""
    given = set(run.flags_used)
    present = {
        "mount": bool(run.mounts),
        "network": run.network is not ir.NetworkMode.DEFAULT or "network" in given,
        "security": run.security is not ir.SecurityMode.SANDBOX or "security" in given,
        "device": bool(run.devices),
    }
    return tuple(name for name in FLAG_ORDER["RUN"] if present[name])


def _run_flags(run: ir.Run, escape: str) -> list[str]:
    written = run_flags_written(run)
    flags = [_flag("mount", m.spec, escape) for m in run.mounts]
    if "network" in written:
        flags.append(_flag("network", run.network.value, escape))
    if "security" in written:
        flags.append(_flag("security", run.security.value, escape))
    flags += [_flag("device", device_spec(d), escape) for d in run.devices]
    return flags


def device_spec(device: ir.Device) -> str:
    """The ``--device`` value that parses back to ``device``."""
    fields: list[str] = []
    name = device.name
    if name:
        plain = not any(c in name for c in '=,"') and name.lower() != "required"
        fields.append(name if plain else _csv_field("name=" + name))
    elif not device.required:
        fields.append("name=")
    if device.required:
        fields.append("required")
    return ",".join(fields)


def _csv_field(field: str) -> str:
    if "," not in field and '"' not in field:
        return field
    return '"' + field.replace('"', '""') + '"'


# --------------------------------------------------------------------------- arguments


def json_array(values: Sequence[str]) -> str:
    """A JSON array of strings, ``["a", "b"]``, that Go's encoding/json reads back exactly."""
    return "[" + ", ".join(_json_string(v) for v in values) + "]"


_JSON_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_JSON_SHORT |= {"\b": "\\b", "\f": "\\f"}


def _json_string(value: str) -> str:
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    out = ['"']
    for ch in value:
        if ch in _JSON_SHORT:
            out.append(_JSON_SHORT[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(json.dumps(ch)[1:-1])  # \uXXXX, or a surrogate pair
    out.append('"')
    return "".join(out)


def _command(instr: ir.Run | ir.Cmd | ir.Entrypoint, escape: str) -> list[str]:
    if not instr.prepend_shell:
        return [json_array(instr.command)]
    if not instr.command:
        return []
    return [_shell_text(instr, instr.command[0], instr.breaks, escape)]


def _shell_text(instr: ir.Instruction, text: str, breaks: Sequence[int], escape: str) -> str:
    try:
        looks_json = parse_json(text) is not None
    except LineSyntaxError:
        looks_json = True
    if looks_json:
        raise _unformattable(instr, "a shell-form command that reads as a JSON array")
    try:
        return break_shell(text, breaks, escape)
    except ValueError as err:
        raise _unformattable(instr, str(err)) from None


def break_shell(text: str, breaks: Sequence[int], escape: str) -> str:
    """``text`` continued on a new line at each offset in ``breaks`` (see the module doc).

    Joining the lines again (drop each escape-newline) gives ``text`` back, and the parser finds
    the same breaks. Raises ``ValueError`` for breaks no source can have (:func:`_break_error`).
    """
    if not breaks:
        return text
    if list(breaks) != sorted(breaks) or not 0 < breaks[0] <= breaks[-1] < len(text):
        raise ValueError(f"line breaks {tuple(breaks)} out of order or outside the command")
    pieces = [text[start:end] for start, end in pairwise([0, *breaks, len(text)])]
    for index, at in enumerate(breaks):
        last = index == len(breaks) - 1
        problem = _break_error(pieces[index], pieces[index + 1], escape, last=last)
        if problem:
            raise ValueError(f"cannot continue the command on a new line at {at}: {problem}")
    return (escape + "\n").join(pieces)


def _break_error(before: str, after: str, escape: str, *, last: bool) -> str:
    """Why the parser would not read ``before`` + escape-newline + ``after`` as one line, or "".

    The escape continues the line only when it is not itself escaped; the parser skips a next
    line that is a comment, or blank (``last``: ``after`` is not followed by an escape).
    """
    if before.endswith(escape):
        return "the escape before the newline would be escaped"
    left = trim_left_space(after)
    if left.startswith("#"):
        return "the next line would be a comment"
    if last and not left:
        return "the next line would be blank"
    return ""


def _is_word(text: str, escape: str) -> bool:
    return parse_words(text, escape) == [text]


def as_word(text: str, escape: str) -> str:
    """``text`` as one shell word with the same expansion (BuildKit's ``ProcessWord``).

    Unchanged when it already is one word; else double-quoted when it holds no quote or escape
    character; else each blank run outside quotes is put in double quotes.
    """
    if _is_word(text, escape):
        return text
    if not any(c in "'\"" or c == escape for c in text):
        key, sep, value = text.partition("=")
        if not sep and not text.startswith("\ufeff"):
            return f'"{text}"'
        if sep and key and not any(c in GO_SPACE for c in key) and not value.startswith("\ufeff"):
            return f'{key}="{value}"'
    out: list[str] = []
    quote = ""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if quote:
            if ch == escape and quote == '"' and i + 1 == n:
                break  # an escape at the very end escapes nothing and is dropped, as below
            out.append(ch)
            if ch == quote:
                quote = ""
            elif ch == escape and quote == '"' and i + 1 < n:
                out.append(text[i + 1])
                i += 1
        elif ch in GO_SPACE:
            j = i
            while j < n and text[j] in GO_SPACE:
                j += 1
            out.append(f'"{text[i:j]}"')
            i = j
            continue
        elif ch == escape:
            if i + 1 < n:  # (an escape at the very end escapes nothing and is dropped)
                out += (ch, text[i + 1])
                i += 1
        else:
            out.append(ch)
            if ch in "'\"":
                quote = ch
        i += 1
    return "".join(out) or '""'


def _last_word(words: list[str], escape: str) -> list[str]:
    """A last word ending in an escaped blank would continue the line: close it with ``""``.

    A last word ending in a lone escape character (not itself escaped, no single quotes in the
    word) loses it when read back: BuildKit's word splitter skips an escape at the end of the
    line, and so does the shell lexer that expands the value. Write the word as it is read.
    """
    if words and len(words[-1]) >= 2 and words[-1][-2] == escape and words[-1][-1] in GO_SPACE:
        words[-1] += '""'
    if words and "'" not in words[-1]:
        last = words[-1]
        if (len(last) - len(last.rstrip(escape))) % 2 == 1:
            words[-1] = last[:-1]
    return words


def keeps_legacy_form(pairs: Sequence[ir.KeyValue]) -> bool:
    """Whether ENV/LABEL ``pairs`` must stay ``key value``: a key holding ``=``.

    Such a key only comes from the legacy form (``LABEL k\u00a0v=x y``: the key runs to the
    first ASCII blank, while the ``=`` check looks at the first word, which ends at the
    U+00A0); in the ``key=value`` form the key always ends at the first ``=``.
    """
    return len(pairs) == 1 and pairs[0].legacy and "=" in pairs[0].key


def pair_words(pairs: Sequence[ir.KeyValue], escape: str) -> list[str]:
    """The words of ENV/LABEL as the formatter writes them (``key=value`` but see above)."""
    if keeps_legacy_form(pairs):
        return [pairs[0].key, pairs[0].value]
    return _last_word([as_word(f"{p.key}={p.value}", escape) for p in pairs], escape)


def arg_words(decls: Sequence[ir.ArgDecl], escape: str) -> list[str]:
    words = [d.key if d.default is None else f"{d.key}={d.default}" for d in decls]
    return _last_word([as_word(w, escape) for w in words], escape)


def _expose_order(ports: Sequence[str]) -> list[str]:
    """Ports in sorted order, except that the line must not start or end with a blank.

    The parser splits on ASCII blanks but trims every Unicode blank from the ends of the line,
    and it sorts the ports again, so a port such as ``"\u00a0x"`` is moved away from the start
    (``"x\u00a0"`` away from the end).
    """
    order = sorted(ports)
    if len(order) < 2:
        return order
    firsts = [i for i, p in enumerate(order) if trim_left_space(p[:1])]
    lasts = [j for j in reversed(range(len(order))) if order[j][-1:].strip(GO_SPACE)]
    for i in firsts:
        for j in lasts:
            if i != j:
                middle = [p for k, p in enumerate(order) if k not in (i, j)]
                return [order[i], *middle, order[j]]
    return order


def _needs_json(paths: Sequence[str]) -> bool:
    """Whether ``paths`` cannot be written blank-separated (COPY, ADD and VOLUME read back
    ``[\\t\\v\\f\\r ]``-split words of the trimmed line, unless it is a JSON array)."""
    if not paths:
        return False
    if any(not p or any(c in "\t\n\v\f\r " for c in p) for p in paths):
        return True
    if not trim_left_space(paths[0][:1]) or not paths[-1][-1:].strip(GO_SPACE):
        return True
    try:
        return parse_json(" ".join(paths)) is not None
    except LineSyntaxError:
        return True


def _path_list(paths: Sequence[str]) -> str:
    return json_array(paths) if _needs_json(paths) else " ".join(paths)


def _render_copy(instr: ir.Copy | ir.Add, escape: str) -> _Text:
    keyword = "COPY" if isinstance(instr, ir.Copy) else "ADD"
    flags: list[str] = []
    if isinstance(instr, ir.Copy) and instr.from_:
        flags.append(_flag("from", instr.from_, escape))
    if instr.chown:
        flags.append(_flag("chown", instr.chown, escape))
    if instr.chmod:
        flags.append(_flag("chmod", instr.chmod, escape))
    if instr.link:
        flags.append("--link")
    if isinstance(instr, ir.Copy):
        if instr.parents:
            flags.append("--parents")
    else:
        if instr.keep_git_dir is not None:
            flags.append("--keep-git-dir" if instr.keep_git_dir else "--keep-git-dir=false")
        if instr.checksum:
            flags.append(_flag("checksum", instr.checksum, escape))
        if instr.unpack is not None:
            flags.append("--unpack" if instr.unpack else "--unpack=false")
    flags += [_flag("exclude", e, escape) for e in instr.exclude]
    markers = [f"<<{h.path}" if h.expand else f'<<"{h.path}"' for h in instr.heredocs]
    items = [*instr.sources, *markers, instr.dest]
    if markers and _needs_json(items) and not _needs_json([*markers, *instr.sources, instr.dest]):
        items = [*markers, *instr.sources, instr.dest]  # a "[" path first read as JSON
    if _needs_json(items):
        # No body is read for JSON form: its heredoc sources are empty files.
        if any(h.data for h in instr.heredocs):
            raise _unformattable(instr, "heredoc bodies with paths that need the JSON form")
        return _Text(head=_line(keyword, flags, [json_array(items)], escape))
    # The parser reads a body for each marker its lexer finds in the line (the IR has a body
    # only for those the instruction parser also takes as heredoc sources; any other body,
    # lost, is written empty), and none for a marker hidden from it by an unclosed quote.
    found = _markers(instr, [keyword, *flags, *items])
    found_names = {name for name, _ in found}
    if any(h.data and h.path not in found_names for h in instr.heredocs):
        raise _unformattable(instr, "a heredoc body whose marker the parser cannot see")
    data = {h.path: h.data for h in instr.heredocs}
    bodies = "".join(_body(instr, name, data.get(name, ""), chomp) for name, chomp in found)
    return _Text(head=_line(keyword, flags, [" ".join(items)], escape), bodies=bodies)


def _markers(instr: ir.Instruction, words: Sequence[str]) -> list[tuple[str, bool]]:
    """(name, chomp) of each heredoc marker the parser finds in the line of ``words``."""
    line = " ".join(words)
    if "<<" not in line:
        return []
    try:
        return [(m.name, m.chomp) for m in markers_in_line(line)]
    except HeredocSyntaxError as err:
        raise _unformattable(instr, f"its line does not lex: {err}") from None


def _body(instr: ir.Instruction, name: str, data: str, chomp: bool) -> str:
    """A heredoc body and its terminator line, if the parser reads it back as ``data``."""
    if data and not data.endswith("\n"):
        raise _unformattable(instr, f"heredoc {name} does not end with a newline")
    for line in data.split("\n")[:-1]:
        if (line.lstrip("\t") if chomp else line).rstrip("\r") == name:
            raise _unformattable(instr, f"heredoc {name} holds its own terminator")
    return data + name + "\n"


def _run_bodies(run: ir.Run, flags: Sequence[str]) -> str:
    """The RUN's bodies; the parser must find exactly its heredocs in the written line."""
    found = _markers(run, ["RUN", *flags, *run.command]) if run.prepend_shell else []
    if found != [(f.name, f.chomp) for f in run.heredocs]:
        raise _unformattable(run, "its heredocs do not match the markers in its command")
    return "".join(_body(run, f.name, f.data, f.chomp) for f in run.heredocs)


def _render_healthcheck(instr: ir.Healthcheck, escape: str) -> _Text:
    kind, *command = instr.test
    if kind == "NONE":
        return _Text(head="HEALTHCHECK NONE")
    flags = [
        _flag(name, format_duration(value), escape)
        for name, value in (
            ("interval", instr.interval),
            ("timeout", instr.timeout),
            ("start-period", instr.start_period),
            ("start-interval", instr.start_interval),
        )
        if value
    ]
    if instr.retries:
        flags.append(_flag("retries", str(instr.retries), escape))
    if kind == "CMD":
        tail = json_array(command)
    else:
        tail = _shell_text(instr, command[0] if command else "", instr.breaks, escape)
    return _Text(head=_line("HEALTHCHECK", flags, [f"CMD {tail}"], escape))


# --------------------------------------------------------------------------- comparison


def normalize(df: ir.Dockerfile) -> ir.Dockerfile:
    """``df`` as the formatter preserves it: what reparsing formatted text must give back.

    Drops positions, paths, diagnostics, keyword spellings and ``original`` texts (and an ONBUILD
    trigger's stored text when the trigger is parsed); writes ENV/LABEL/ARG words the way the
    formatter writes them (the legacy ``ENV k v`` form becomes ``k=v``) and RUN's
    ``flags_used`` in the formatter's flag order.
    """
    escape = df.escape
    return ir.Dockerfile(
        path="",
        stages=tuple(
            replace(
                s,
                span=_NOWHERE,
                instructions=tuple(_normal(i, escape) for i in s.instructions),
                from_=replace(s.from_, span=_NOWHERE, keyword="", original="") if s.from_ else None,
            )
            for s in df.stages
        ),
        global_args=tuple(_normal_arg(a, escape) for a in df.global_args),
        directives=tuple(replace(d, line=0) for d in effective_directives(df)),
        escape=escape,
    )


def _normal(instr: ir.Instruction, escape: str) -> ir.Instruction:
    plain: ir.Instruction = replace(instr, span=_NOWHERE, keyword="", original="")
    if isinstance(plain, ir.Env | ir.Label) and not keeps_legacy_form(plain.pairs):
        pairs = []
        for word in pair_words(plain.pairs, escape):
            key, _, value = word.partition("=")
            pairs.append(ir.KeyValue(key=key, value=value))
        return replace(plain, pairs=tuple(pairs))
    if isinstance(plain, ir.Arg):
        return _normal_arg(plain, escape)
    if isinstance(plain, ir.Run):
        return replace(plain, flags_used=run_flags_written(plain))
    if isinstance(plain, ir.OnBuild) and plain.trigger is not None:
        return replace(plain, expression="", trigger=_normal(plain.trigger, escape))
    return plain


def _normal_arg(arg: ir.Arg, escape: str) -> ir.Arg:
    decls = []
    for word in arg_words(arg.args, escape):
        key, sep, value = word.partition("=")
        decls.append(ir.ArgDecl(key=key, default=value if sep else None))
    return replace(arg, span=_NOWHERE, keyword="", original="", args=tuple(decls))


def format_text(text: str, *, path: str = "Dockerfile") -> str:
    """Parse ``text`` and format it; raise the parse or instruction error if it has one.

    The result is checked: it must parse to the same IR (:func:`normalize`), else a
    :class:`~builder.errors.BuildError` says the formatter would have changed the file.
    """
    ast = parse(text, path=path)
    df = to_ir(ast)
    out = format_dockerfile(df, comments=ast.comments, directives=ast.directives)
    try:
        again = to_ir(parse(out, path=path))
    except BuildError as err:
        raise BuildError(f"internal error: formatted text does not parse: {err}") from None
    if normalize(again) != normalize(df):
        raise BuildError(f"internal error: formatting would change the meaning of {path}")
    return out


__all__ = [
    "FLAG_ORDER",
    "INDENT",
    "LINE_WIDTH",
    "arg_words",
    "as_word",
    "break_shell",
    "device_spec",
    "effective_directives",
    "flag_value",
    "format_dockerfile",
    "format_instruction",
    "format_text",
    "json_array",
    "keeps_legacy_form",
    "normalize",
    "pair_words",
    "run_flags_written",
]
