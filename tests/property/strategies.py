"""Hypothesis strategies that build typed IR (``builder.syntax.ir``) values directly.

Every value is one the parser can produce, so that ``to_ir(parse(format(x)))`` can be compared
with ``x`` exactly (positions aside). Restrictions, and why (the IR cannot say otherwise):

* Texts hold no newline (instructions are one logical line) and are trimmed where the parser
  trims them; shell-form commands never read as a JSON array (they would be exec form).
* ``<`` appears only in the heredoc markers generated for RUN, COPY and ADD: any ``<<word`` in
  those lines is a heredoc marker to the parser.
* Flag values are in the byte view the parser gives them (each UTF-8 byte one character), see
  :func:`builder.syntax.format.flag_value`.
* ENV/LABEL/ARG words are single shell words as ``parse_words`` splits them, and the last one does
  not end in an escaped blank (no line can end that way); legacy ``ENV k v`` pairs have their own
  property, since their raw text changes (to ``k=v``) while their expansion does not.
* Exec-form strings hold no lone surrogate (the parser turns them into U+FFFD).
* Shell-form commands have line breaks only where a source can continue a line (not after an
  escape character, not before a line the parser skips): the formatter's own check
  (:func:`builder.syntax.format.break_shell`) decides, and the round trip shows that the parser
  finds exactly those breaks again.
* Heredoc bodies are whole lines, none of them equal to the terminator. A COPY/ADD with a
  heredoc body has plain paths and flags (so the parser's heredoc lexer sees every marker).
"""

from __future__ import annotations

import functools

from hypothesis import strategies as st

from builder.errors import InvalidInstructionError, Span
from builder.syntax import ir
from builder.syntax.format import break_shell
from builder.syntax.gotext import GO_SPACE, RE_WHITESPACE, byte_view, trim_space
from builder.syntax.lineparse import LineSyntaxError, parse_json, parse_words
from builder.syntax.mounts import parse_mount
from builder.syntax.tree import Directive

SPAN = Span(file="Dockerfile", line=1)
ESCAPES = ("\\", "`")

# Characters that stress the writers: quotes, escapes, expansion syntax, JSON specials, blanks
# that only some splitters see (U+00A0, U+0085, U+3000, VT, FF), controls, BOM, wide characters.
_SPECIAL = list("\"'$\\`{}[]()=,:;#&|>*?!~%^@-./_ \t")
_ODD = ["é", "日", "🙂", "\u00a0", "\u0085", "\u2028", "\u3000", "\x00", "\x7f", "\r", "\x0b"]
_ODD += ["\x0c", "\ufeff", "Ω"]
_ANY = st.characters(exclude_categories=("Cs",), exclude_characters="\n<")
_TEXT_CHARS = st.one_of(st.sampled_from(list("ab01") + _SPECIAL), st.sampled_from(_ODD), _ANY)
_PLAIN = "abcxyzABC019_-./:@%+é日"
_SAFE_FILLER = st.sampled_from(["cat", "echo hi", "&&", ">", "/tmp/out", "sh", "-c", "x=1", ";"])
_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,7}", fullmatch=True)
_HEREDOC_NAME = st.from_regex(r"[A-Z][A-Z0-9_]{0,5}", fullmatch=True)
_STAGE_NAME = st.from_regex(r"[a-z][a-z0-9_.-]{0,7}", fullmatch=True)


def _looks_json(text: str) -> bool:
    try:
        return parse_json(text) is not None
    except LineSyntaxError:
        return True


@functools.cache
def text(*, min_size: int = 1, max_size: int = 30) -> st.SearchStrategy[str]:
    """Trimmed one-line text with every kind of awkward character (no ``<``)."""
    return (
        st.text(_TEXT_CHARS, min_size=min_size, max_size=max_size)
        .map(trim_space)
        .filter(lambda s: len(s) >= min_size)
    )


shell_text = text(max_size=40).filter(lambda s: not _looks_json(s))
exec_form = st.lists(st.text(st.characters(exclude_categories=("Cs",)), max_size=12), max_size=4)
token = st.text(st.sampled_from(list(_PLAIN + "\"'$\\`[]{}#=")), min_size=1, max_size=12)


def _breakable(command: str, breaks: list[int], escape: str) -> bool:
    try:
        break_shell(command, breaks, escape)
    except ValueError:
        return False
    return True


@st.composite
def line_breaks(draw: st.DrawFn, command: str, escape: str) -> tuple[int, ...]:
    """Offsets where a source may continue the shell-form ``command`` on a new line."""
    if len(command) < 2:
        return ()
    offsets = sorted(draw(st.lists(st.integers(1, len(command) - 1), max_size=3)))
    kept = [o for o in offsets if _breakable(command, [o], escape)]
    return tuple(kept) if _breakable(command, kept, escape) else ()


@functools.cache
def flag_text(*, safe: bool = False, allow_empty: bool = False) -> st.SearchStrategy[str]:
    """A flag value as the IR holds it (byte view); ``safe`` ones also lex cleanly."""
    source = st.text(st.sampled_from(list(_PLAIN)), min_size=1, max_size=12) if safe else text()
    if allow_empty:
        source = st.one_of(st.just(""), source)
    return source.map(byte_view)


@functools.cache
def _word_parts(escape: str) -> st.SearchStrategy[list[str]]:
    other = "`" if escape == "\\" else "\\"
    plain = st.text(st.sampled_from(list(_PLAIN + "$={}#" + other)), min_size=1, max_size=6)
    inside = st.text(
        st.one_of(st.sampled_from(list(_PLAIN + " \t$='{}" + other)), st.sampled_from(_ODD)),
        max_size=6,
    ).filter(lambda s: '"' not in s and escape not in s)
    single = st.text(
        st.one_of(st.sampled_from(list(_PLAIN + ' \t$="\\`')), st.sampled_from(_ODD)), max_size=6
    ).filter(lambda s: "'" not in s)
    escaped = st.sampled_from(list(" \t\"'$=\\`" + "a\u00a0é")).map(lambda c: escape + c)
    return st.lists(
        st.one_of(plain, inside.map(lambda s: f'"{s}"'), single.map(lambda s: f"'{s}'"), escaped),
        min_size=1,
        max_size=4,
    )


@functools.cache
def shell_word(escape: str) -> st.SearchStrategy[str]:
    """One word as ``parse_words`` splits it: plain runs, quoted runs, escaped characters."""
    return _word_parts(escape).map("".join)


@functools.cache
def _key(escape: str) -> st.SearchStrategy[str]:
    return st.one_of(_NAME, shell_word(escape).filter(lambda w: "=" not in w))


@functools.cache
def _value(escape: str) -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), shell_word(escape))


@functools.cache
def _default(escape: str) -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), st.just(""), shell_word(escape))


def _single_word(word: str, escape: str) -> bool:
    return parse_words(word, escape) == [word]


def _ends_in_escaped_blank(word: str, escape: str) -> bool:
    return len(word) >= 2 and word[-2] == escape and trim_space(word[-1]) == ""


@st.composite
def pair(draw: st.DrawFn, escape: str) -> ir.KeyValue:
    key = draw(_key(escape))
    value = draw(_value(escape))
    word = f"{key}={value}"
    if not _single_word(word, escape):
        key, value = "k", "v"
    return ir.KeyValue(key=key, value=value)


def _fix_last(pairs: list[ir.KeyValue], escape: str) -> list[ir.KeyValue]:
    last = pairs[-1]
    if _ends_in_escaped_blank(f"{last.key}={last.value}", escape):
        pairs[-1] = ir.KeyValue(key=last.key, value=last.value + "x")
    return pairs


_LEGACY_KEY = st.one_of(_NAME, st.text(st.sampled_from(list(_PLAIN + "\"'$\\`{}")), min_size=1))


@st.composite
def legacy_pair(draw: st.DrawFn, escape: str) -> ir.KeyValue:
    """``ENV key value`` as the parser reads it (its first word holds no ``=``): the key runs
    to the first ASCII blank, the value is the trimmed rest."""
    key = draw(_LEGACY_KEY)
    if draw(st.integers(0, 5)) == 0:  # "=" after a U+00A0, where BuildKit's first word ends
        key = f"{key}\u00a0{draw(_NAME)}={draw(_NAME)}"
    value = draw(text(max_size=25))
    words = parse_words(f"{key} {value}", escape)
    if "=" in words[0] or RE_WHITESPACE.split(f"{key} {value}", maxsplit=1) != [key, value]:
        key = "k"
    return ir.KeyValue(key=key, value=value, legacy=True)


@functools.cache
def _pairs(escape: str) -> st.SearchStrategy[list[ir.KeyValue]]:
    return st.lists(pair(escape), min_size=1, max_size=6)


@st.composite
def env_or_label(draw: st.DrawFn, escape: str) -> ir.Env | ir.Label:
    pairs = _fix_last(draw(_pairs(escape)), escape)
    if draw(st.booleans()):
        return ir.Env(span=SPAN, keyword="ENV", original="", pairs=tuple(pairs))
    return ir.Label(span=SPAN, keyword="LABEL", original="", pairs=tuple(pairs))


@st.composite
def arg(draw: st.DrawFn, escape: str) -> ir.Arg:
    decls: list[ir.ArgDecl] = []
    for key in draw(st.lists(_NAME, min_size=1, max_size=3)):
        default = draw(_default(escape))
        word = key if default is None else f"{key}={default}"
        if not _single_word(word, escape):
            default = None
        decls.append(ir.ArgDecl(key=key, default=default))
    last = decls[-1]
    if last.default is not None and _ends_in_escaped_blank(last.default, escape):
        decls[-1] = ir.ArgDecl(key=last.key, default=last.default + "x")
    return ir.Arg(span=SPAN, keyword="ARG", original="", args=tuple(decls))


_BASE = st.one_of(
    st.sampled_from(["alpine", "busybox:1.36", "scratch", "--weird", "[x]"]),
    st.text(_TEXT_CHARS, min_size=1, max_size=15).filter(lambda s: trim_space(s) == s),
).filter(lambda s: s and not any(c.isspace() or c in "\x85\xa0" for c in s))
_PLATFORM = st.one_of(st.none(), flag_text())


@st.composite
def from_(draw: st.DrawFn, name: str | None) -> ir.From:
    return ir.From(
        span=SPAN,
        keyword="FROM",
        original="",
        base=draw(_BASE),
        stage_name=name,
        platform=draw(_PLATFORM),
    )


@functools.cache
def _mount_options(kind: ir.MountType, safe: bool) -> dict[str, st.SearchStrategy[str]]:
    path_chars = _PLAIN + ("" if safe else " $,\"'é日")
    path = st.text(st.sampled_from(list(path_chars)), min_size=1, max_size=10)
    options: dict[str, st.SearchStrategy[str]] = {"target": path.map(lambda p: "/" + p)}
    if kind in (ir.MountType.BIND, ir.MountType.CACHE):
        options |= {"source": path, "from": _STAGE_NAME, "ro": st.just(""), "rw": st.just("")}
    if kind is ir.MountType.CACHE:
        options |= {"id": path, "sharing": st.sampled_from(["shared", "private", "locked"])}
    if kind is ir.MountType.TMPFS:
        options["size"] = st.sampled_from(["64m", "1024", "1g", "10 kb"])
    if kind in (ir.MountType.SECRET, ir.MountType.SSH):
        options |= {"id": path, "required": st.sampled_from(["", "true", "false"])}
    if kind is ir.MountType.SECRET:
        options["env"] = _NAME
    if kind in (ir.MountType.CACHE, ir.MountType.SECRET, ir.MountType.SSH):
        options |= {"mode": st.sampled_from(["0755", "400"]), "uid": st.just("1000")}
    return options


@functools.cache
def _option_names(kind: ir.MountType) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(sorted(_mount_options(kind, True))), unique=True, max_size=4)


@st.composite
def mount(draw: st.DrawFn, escape: str, *, safe: bool) -> ir.Mount:
    kind = draw(st.sampled_from(list(ir.MountType)))
    options = _mount_options(kind, safe)
    chosen = draw(_option_names(kind))
    fields = [] if kind is ir.MountType.BIND and draw(st.booleans()) else [f"type={kind.value}"]
    for key in chosen:
        value = draw(options[key])
        field = key if value == "" else f"{key}={value}"
        if "," in field or '"' in field:
            field = '"' + field.replace('"', '""') + '"'
        fields.append(field)
    if kind is ir.MountType.SECRET and not {"target", "id"} & set(chosen):
        fields.append("target=/run/s")
    spec = byte_view(",".join(fields))
    try:
        return parse_mount(spec, escape=escape)
    except InvalidInstructionError:  # a combination BuildKit rejects: take a plain one
        return parse_mount(f"type={kind.value},target=/t,id=i", escape=escape)


device = st.builds(
    ir.Device,
    name=st.one_of(st.just(""), st.text(_TEXT_CHARS, max_size=10)).map(byte_view),
    required=st.booleans(),
)


_BODY = st.lists(
    st.lists(
        st.one_of(st.text(_TEXT_CHARS, max_size=6), st.sampled_from(["\t", "<<EOF", "@NAME@"])),
        max_size=4,
    ).map("".join),
    max_size=3,
)


def _body(draw: st.DrawFn, name: str, *, chomp: bool) -> str:
    """Heredoc body lines, none of them the terminator (after ``<<-`` tab removal)."""

    def fine(line: str) -> bool:
        return (line.lstrip("\t") if chomp else line).rstrip("\r") != name

    lines = [line.replace("@NAME@", name) for line in draw(_BODY)]
    return "".join(line + "\n" for line in lines if fine(line))


@functools.cache
def _mounts(escape: str, safe: bool) -> st.SearchStrategy[list[ir.Mount]]:
    return st.lists(mount(escape, safe=safe), max_size=2)


_DEVICES = st.lists(device, max_size=2)


@st.composite
def run(draw: st.DrawFn, escape: str) -> ir.Run:
    heredocs: list[ir.InlineFile] = []
    if draw(st.integers(0, 3)) == 0:  # a quarter of the RUNs have heredocs
        parts: list[str] = []
        for name in draw(st.lists(_HEREDOC_NAME, min_size=1, max_size=2, unique=True)):
            chomp = draw(st.booleans())
            quote = draw(st.sampled_from(["", '"', "'"]))
            parts += draw(st.lists(_SAFE_FILLER, max_size=2))
            parts.append(f"<<{'-' if chomp else ''}{quote}{name}{quote}")
            heredocs.append(
                ir.InlineFile(name=name, data=_body(draw, name, chomp=chomp), chomp=chomp)
            )
        parts += draw(st.lists(_SAFE_FILLER, max_size=2))
        command: tuple[str, ...] = (" ".join(parts),)
        shell = True
    elif draw(st.booleans()):
        command, shell = (draw(shell_text),), True
    else:
        command, shell = tuple(draw(exec_form)), False
        if not command and draw(st.booleans()):
            shell = True  # "RUN" alone
    breaks = draw(line_breaks(command[0], escape)) if shell and command else ()
    safe = bool(heredocs)
    mounts = tuple(draw(_mounts(escape, safe)))
    network = draw(st.sampled_from(list(ir.NetworkMode)))
    security = draw(st.sampled_from(list(ir.SecurityMode)))
    devices = tuple(draw(_DEVICES)) if not safe else ()
    used = {
        "mount": bool(mounts),
        "network": network is not ir.NetworkMode.DEFAULT or draw(st.booleans()),
        "security": security is not ir.SecurityMode.SANDBOX or draw(st.booleans()),
        "device": bool(devices),
    }
    flags_used = draw(st.permutations([k for k, v in used.items() if v]))
    return ir.Run(
        span=SPAN,
        keyword="RUN",
        original="",
        command=command,
        prepend_shell=shell,
        breaks=breaks,
        heredocs=tuple(heredocs),
        mounts=mounts,
        network=network,
        security=security,
        devices=devices,
        flags_used=tuple(flags_used),
    )


@st.composite
def cmd_or_entrypoint(draw: st.DrawFn, escape: str) -> ir.Cmd | ir.Entrypoint:
    if draw(st.booleans()):
        command, shell = (draw(shell_text),), True
    else:
        command, shell = tuple(draw(exec_form)), False
    if not command and draw(st.booleans()):
        shell = True
    breaks = draw(line_breaks(command[0], escape)) if shell and command else ()
    cls = ir.Cmd if draw(st.booleans()) else ir.Entrypoint
    keyword = cls.__name__.upper()
    return cls(
        span=SPAN,
        keyword=keyword,
        original="",
        command=command,
        prepend_shell=shell,
        breaks=breaks,
    )


_copy_path = st.text(_TEXT_CHARS, max_size=10)
_safe_path = st.text(st.sampled_from(list(_PLAIN)), min_size=1, max_size=10)


@functools.cache
def _optional_flag(safe: bool) -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), flag_text(safe=safe))


@functools.cache
def _excludes(safe: bool) -> st.SearchStrategy[list[str]]:
    return st.lists(flag_text(safe=safe, allow_empty=True), max_size=2)


@st.composite
def copy_or_add(draw: st.DrawFn) -> ir.Copy | ir.Add:
    inline: list[ir.InlineSource] = []
    # Empty heredoc sources go with any path: a JSON-form COPY, or an open quote that hides
    # the marker from the parser's heredoc lexer, gives them no body at all.
    empty = draw(st.booleans())
    if draw(st.integers(0, 2)) == 0:
        for name in draw(st.lists(_HEREDOC_NAME, min_size=1, max_size=2, unique=True)):
            data = "" if empty else _body(draw, name, chomp=False)
            inline.append(ir.InlineSource(path=name, data=data, expand=draw(st.booleans())))
    safe = bool(inline) and not empty
    path = _safe_path if safe else _copy_path
    sources = tuple(draw(st.lists(path, min_size=0 if inline else 1, max_size=3)))
    dest = draw(path)
    string_flag = _optional_flag(safe)
    excludes = tuple(draw(_excludes(safe)))
    common = {
        "span": SPAN,
        "original": "",
        "sources": sources,
        "dest": dest,
        "heredocs": tuple(inline),
        "chown": draw(string_flag),
        "chmod": draw(string_flag),
        "link": draw(st.booleans()),
        "exclude": excludes,
    }
    if draw(st.booleans()):
        return ir.Copy(
            keyword="COPY",
            from_=draw(st.one_of(st.none(), _STAGE_NAME)),
            parents=draw(st.booleans()),
            **common,  # type: ignore[arg-type]
        )
    return ir.Add(
        keyword="ADD",
        checksum=draw(string_flag),
        keep_git_dir=draw(st.one_of(st.none(), st.booleans())),
        unpack=draw(st.one_of(st.none(), st.booleans())),
        **common,  # type: ignore[arg-type]
    )


_duration = st.one_of(
    st.just(0),
    st.integers(1_000_000, 10**12),
    st.integers(1_000_000, 2**63 - 1),
    st.sampled_from([1_000_000_000, 90_000_000_000, 3_600_000_000_000, 1_500_000]),
)


@st.composite
def healthcheck(draw: st.DrawFn, escape: str) -> ir.Healthcheck:
    kind = draw(st.sampled_from(["NONE", "CMD", "CMD-SHELL"]))
    if kind == "NONE":
        return ir.Healthcheck(span=SPAN, keyword="HEALTHCHECK", original="", test=("NONE",))
    breaks: tuple[int, ...] = ()
    if kind == "CMD":
        test = ("CMD", *draw(exec_form.filter(bool)))
    else:
        test = ("CMD-SHELL", draw(shell_text))
        breaks = draw(line_breaks(test[1], escape))
    return ir.Healthcheck(
        span=SPAN,
        keyword="HEALTHCHECK",
        original="",
        test=test,
        interval=draw(_duration),
        timeout=draw(_duration),
        start_period=draw(_duration),
        start_interval=draw(_duration),
        retries=draw(st.one_of(st.just(0), st.integers(1, 2**31 - 1))),
        breaks=breaks,
    )


def _user() -> st.SearchStrategy[ir.Instruction]:
    return text().map(lambda t: ir.User(span=SPAN, keyword="USER", original="", user=t))


def _workdir() -> st.SearchStrategy[ir.Instruction]:
    return text().map(lambda t: ir.Workdir(span=SPAN, keyword="WORKDIR", original="", path=t))


def _stopsignal() -> st.SearchStrategy[ir.Instruction]:
    return text().map(
        lambda t: ir.StopSignal(span=SPAN, keyword="STOPSIGNAL", original="", signal=t)
    )


def _maintainer() -> st.SearchStrategy[ir.Instruction]:
    return text().map(
        lambda t: ir.Maintainer(span=SPAN, keyword="MAINTAINER", original="", maintainer=t)
    )


_PORT = st.text(st.sampled_from(list(_PLAIN + "\"'$\u00a0\u3000")), min_size=1, max_size=8)


def _ports_fit_a_line(ports: list[str]) -> bool:
    """Some order puts no Unicode blank at the ends of the line (the parser trims them)."""
    if len(ports) == 1:
        return trim_space(ports[0]) == ports[0]
    firsts = [i for i, p in enumerate(ports) if trim_space(p[0])]
    lasts = [i for i, p in enumerate(ports) if trim_space(p[-1])]
    return any(i != j for i in firsts for j in lasts)


@functools.cache
def instruction(escape: str, *, trigger: bool = False) -> st.SearchStrategy[ir.Instruction]:
    """Any instruction but FROM (ONBUILD triggers: no ONBUILD and no MAINTAINER either)."""
    choices: list[st.SearchStrategy[ir.Instruction]] = [
        run(escape),
        cmd_or_entrypoint(escape),
        copy_or_add(),
        env_or_label(escape),
        arg(escape),
        st.lists(_PORT, min_size=1, max_size=4)
        .filter(_ports_fit_a_line)
        .map(
            lambda ps: ir.Expose(span=SPAN, keyword="EXPOSE", original="", ports=tuple(sorted(ps)))
        ),
        st.lists(text(max_size=12), min_size=1, max_size=3).map(
            lambda ps: ir.Volume(span=SPAN, keyword="VOLUME", original="", paths=tuple(ps))
        ),
        _user(),
        _workdir(),
        _stopsignal(),
        exec_form.filter(bool).map(
            lambda c: ir.Shell(span=SPAN, keyword="SHELL", original="", shell=tuple(c))
        ),
        healthcheck(escape),
    ]
    if not trigger:
        choices += [_maintainer(), onbuild(escape)]
    return st.one_of(choices)


@st.composite
def onbuild(draw: st.DrawFn, escape: str) -> ir.OnBuild:
    if draw(st.integers(0, 4)) == 0:  # a trigger that does not parse is kept as text
        keyword = draw(st.sampled_from(["BOGUS", "Frob", "COPY"]))
        rest = draw(
            text(max_size=20).filter(
                lambda s: not any(c in GO_SPACE for c in s) and not s.startswith("-")
            )
        )
        if rest.endswith(escape):  # (with blanks after it, possible only at the end of a file)
            rest += "x"
        expression = f"{keyword} {rest}" + draw(st.sampled_from(["", "  ", "\u00a0"]))
        return ir.OnBuild(span=SPAN, keyword="ONBUILD", original="", expression=expression)
    trigger = draw(instruction(escape, trigger=True))
    return ir.OnBuild(span=SPAN, keyword="ONBUILD", original="", expression="", trigger=trigger)


@functools.cache
def _global_args(escape: str) -> st.SearchStrategy[list[ir.Arg]]:
    return st.lists(arg(escape), max_size=2)


@functools.cache
def _bodies(escape: str) -> st.SearchStrategy[list[ir.Instruction]]:
    return st.lists(instruction(escape), max_size=4)


@st.composite
def dockerfiles(draw: st.DrawFn) -> ir.Dockerfile:
    escape = draw(st.sampled_from(ESCAPES))
    directives: list[Directive] = []
    if draw(st.booleans()):
        directives.append(Directive(name="syntax", value="docker/dockerfile:1", line=0))
    if escape != "\\" or draw(st.booleans()):
        directives.append(Directive(name="escape", value=escape, line=0))
    if draw(st.booleans()):
        directives.reverse()
    global_args = tuple(draw(_global_args(escape)))
    count = draw(st.integers(1, 3))
    names = draw(st.lists(_STAGE_NAME, min_size=count, max_size=count, unique=True))
    stages = []
    for index, name in enumerate(names):
        stage_name = name if draw(st.booleans()) else None
        first = draw(from_(stage_name))
        body = tuple(draw(_bodies(escape)))
        stages.append(
            ir.Stage(
                name=stage_name,
                base=first.base,
                platform=first.platform,
                instructions=body,
                span=SPAN,
                index=index,
                from_=first,
            )
        )
    return ir.Dockerfile(
        path="Dockerfile",
        stages=tuple(stages),
        global_args=global_args,
        directives=tuple(directives),
        escape=escape,
    )


__all__ = [
    "ESCAPES",
    "SPAN",
    "arg",
    "dockerfiles",
    "flag_text",
    "instruction",
    "legacy_pair",
    "shell_text",
    "shell_word",
    "text",
]
