"""Syntax tree -> typed IR, with BuildKit's instruction checks and messages.

This is BuildKit's ``frontend/dockerfile/instructions`` package: every :class:`~ast.Node` becomes
one :mod:`builder.syntax.ir` instruction, flags are parsed with :class:`~flags.BFlags`, argument
counts and values are checked, and the instructions are grouped into stages.

* :func:`to_ir` raises the first problem (what a build needs).
* :func:`check` returns every problem of the file, each located at the token it is about
  (the keyword of an unknown instruction, the flag of a flag error, ...).
* :func:`analyze` returns both, plus the warnings.

Deliberate differences from BuildKit: ``RUN --mount`` options are checked here for every stage
(BuildKit checks them when it runs a step); an ONBUILD trigger that would fail is a warning
here, since BuildKit only parses it in the build that uses the image. Lint rules live in
:mod:`builder.lint`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from builder.errors import (
    BuildError,
    Diagnostic,
    DockerfileError,
    ExpansionError,
    InvalidInstructionError,
    Level,
    Span,
    StageError,
    UnknownInstructionError,
)
from builder.syntax import ir
from builder.syntax.expand import Lexer
from builder.syntax.flags import BFlags, suggest
from builder.syntax.gotext import GO_SPACE, go_quote, trim_space
from builder.syntax.heredoc import HeredocSyntaxError, Marker, parse_marker
from builder.syntax.locate import Context as _Context
from builder.syntax.locate import Where as _Where
from builder.syntax.mounts import parse_device, parse_mount
from builder.syntax.tree import AST, Node
from builder.units import parse_duration

INSTRUCTIONS = (
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
)

COPY_FROM_VARIABLE = (
    "variable expansion is not supported for --from, "
    "define a new stage with FROM using ARG from global scope as a workaround"
)

_VALID_STAGE_NAME = re.compile(r"[a-z][a-z0-9_.-]*")
_ONBUILD_PREFIX = re.compile(r"^[\t\n\f\r ]*onbuild[\t\n\f\r ]*", re.IGNORECASE)
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True, kw_only=True)
class Analysis:
    """Everything known about a file: the IR when it has no error, every error, every warning."""

    dockerfile: ir.Dockerfile | None
    errors: tuple[DockerfileError, ...]
    warnings: tuple[Diagnostic, ...]
    instruction_count: int = 0
    parsed: tuple[tuple[Node, ir.Instruction], ...] = ()  # each node that parsed, in file order


def to_ir(ast: AST) -> ir.Dockerfile:
    """The typed IR of ``ast``; raises the first problem in file order."""
    dockerfile = _Analyzer(ast, collect=False).run().dockerfile
    assert dockerfile is not None  # without collect, the first error was raised
    return dockerfile


def check(ast: AST) -> tuple[BuildError, ...]:
    """Every semantic problem of ``ast``, in file order (empty when the file is valid)."""
    return _Analyzer(ast, collect=True).run().errors


def analyze(ast: AST) -> Analysis:
    """Errors, warnings and (when there is no error) the IR of ``ast``, in one pass."""
    return _Analyzer(ast, collect=True).run()


# --------------------------------------------------------------------------- one instruction


def _node_args(node: Node) -> tuple[str, ...]:
    """BuildKit's ``nodeArgs``: a nested instruction contributes its keyword and arguments."""
    if node.sub is None:
        return node.args
    return (node.sub.cmd, *_node_args(node.sub))


class _Request:
    """BuildKit's ``parseRequest``: one node's arguments and flags, and where they are."""

    __slots__ = ("args", "command", "ctx", "flags", "node", "original", "span", "where")

    def __init__(self, ctx: _Context, node: Node, *, span: Span, where: _Where) -> None:
        self.ctx = ctx
        self.node = node
        self.command = node.cmd
        self.original = trim_space(node.original)
        self.span = span
        self.where = where
        self.args = _node_args(node)
        self.flags = BFlags(node.flags)

    def parse_flags(self) -> None:
        try:
            self.flags.parse()
        except InvalidInstructionError as err:
            index = self.flags.error_index
            err.span = self.where.flag(index) if index is not None else self.where.keyword()
            raise

    def fail(self, message: str, at: Span | None = None) -> InvalidInstructionError:
        """An error about this instruction, at ``at`` or else at its whole first line."""
        return InvalidInstructionError(message, span=at or self.where.whole())

    def exactly_one(self, name: str) -> None:
        if len(self.args) != 1:
            raise self.fail(f"{name} requires exactly one argument")

    def at_least_one(self, name: str) -> None:
        if not self.args:
            raise self.fail(f"{name} requires at least one argument")


def _parse_node(ctx: _Context, node: Node, *, span: Span, where: _Where) -> ir.Instruction:
    req = _Request(ctx, node, span=span, where=where)
    match node.cmd.lower():
        case "env":
            req.parse_flags()
            return ir.Env(
                span=span, keyword=req.command, original=req.original, pairs=_kvps(req, "ENV")
            )
        case "maintainer":
            req.exactly_one("MAINTAINER")
            req.parse_flags()
            return ir.Maintainer(
                span=span, keyword=req.command, original=req.original, maintainer=req.args[0]
            )
        case "label":
            req.parse_flags()
            return ir.Label(
                span=span, keyword=req.command, original=req.original, pairs=_kvps(req, "LABEL")
            )
        case "add":
            return _parse_add(req)
        case "copy":
            return _parse_copy(req)
        case "from":
            return _parse_from(req)
        case "onbuild":
            return _parse_onbuild(req)
        case "workdir":
            req.exactly_one("WORKDIR")
            req.parse_flags()
            return ir.Workdir(
                span=span, keyword=req.command, original=req.original, path=req.args[0]
            )
        case "run":
            return _parse_run(req)
        case "cmd":
            req.parse_flags()
            command = _cmdline(req)
            return ir.Cmd(
                span=span,
                keyword=req.command,
                original=req.original,
                command=command,
                prepend_shell=not node.json,
                breaks=_shell_breaks(req, command),
            )
        case "entrypoint":
            req.parse_flags()
            command = _cmdline(req)
            return ir.Entrypoint(
                span=span,
                keyword=req.command,
                original=req.original,
                command=command,
                prepend_shell=not node.json,
                breaks=_shell_breaks(req, command),
            )
        case "healthcheck":
            return _parse_healthcheck(req)
        case "expose":
            req.at_least_one("EXPOSE")
            req.parse_flags()
            return ir.Expose(
                span=span, keyword=req.command, original=req.original, ports=tuple(sorted(req.args))
            )
        case "user":
            req.exactly_one("USER")
            req.parse_flags()
            return ir.User(span=span, keyword=req.command, original=req.original, user=req.args[0])
        case "volume":
            req.at_least_one("VOLUME")
            req.parse_flags()
            paths = tuple(trim_space(v) for v in req.args)
            if "" in paths:
                raise req.fail("VOLUME specified can not be an empty string")
            return ir.Volume(span=span, keyword=req.command, original=req.original, paths=paths)
        case "stopsignal":
            req.exactly_one("STOPSIGNAL")
            return ir.StopSignal(
                span=span, keyword=req.command, original=req.original, signal=req.args[0]
            )
        case "arg":
            return _parse_arg(req)
        case "shell":
            return _parse_shell(req)
    message = f"unknown instruction: {node.cmd}"
    guess = suggest(node.cmd, INSTRUCTIONS, case_sensitive=False)
    if guess is not None:
        raise UnknownInstructionError(
            f"{message} (did you mean {guess}?)",
            span=where.keyword(),
            hint=f"did you mean {guess}?",
        )
    raise UnknownInstructionError(message, span=where.keyword())


def _kvps(req: _Request, name: str) -> tuple[ir.KeyValue, ...]:
    args = req.args
    if not args:
        raise req.fail(f"{name} requires at least one argument")
    if len(args) % 3:
        raise req.fail(f"Bad input to {name}, too many arguments")
    pairs = []
    for j in range(0, len(args), 3):
        if not args[j]:
            raise req.fail(f"{name} names can not be blank")
        pairs.append(ir.KeyValue(key=args[j], value=args[j + 1], legacy=args[j + 2] == ""))
    return tuple(pairs)


def _cmdline(req: _Request) -> tuple[str, ...]:
    """BuildKit's ``handleJSONArgs``: exec form as is, shell form as one string."""
    args = req.args
    if not args or req.node.json:
        return args
    if len(args) == 1:
        return args
    return (" ".join(args),)


def _shell_breaks(req: _Request, command: tuple[str, ...]) -> tuple[int, ...]:
    """The source's line breaks inside a shell-form ``command`` (see ``ir.Run``)."""
    node = req.node
    if not node.breaks or node.json or len(command) != 1:
        return ()
    return _breaks_in(node, command[0])


def _breaks_in(node: Node, text: str) -> tuple[int, ...]:
    """``node.breaks`` as offsets into ``text``, the end of the node's (right-trimmed) line.

    Only breaks strictly inside ``text`` count: one before it or at either end is layout that
    the formatter writes its own way.
    """
    if not node.breaks:
        return ()
    line = node.original.rstrip(GO_SPACE)
    start = len(line) - len(text)
    if start < 0 or not line.endswith(text):
        return ()
    return tuple([b - start for b in node.breaks if start < b < len(line)])


def _parse_arg(req: _Request) -> ir.Arg:
    req.at_least_one("ARG")
    decls = []
    for word in req.args:
        key, sep, value = word.partition("=")
        if sep and not key:
            raise req.fail("ARG names can not be blank")
        decls.append(ir.ArgDecl(key=key, default=value if sep else None))
    return ir.Arg(span=req.span, keyword=req.command, original=req.original, args=tuple(decls))


def _parse_shell(req: _Request) -> ir.Shell:
    req.parse_flags()
    shell = _cmdline(req)
    if not shell:
        raise req.fail("SHELL requires at least one argument")
    if not req.node.json:
        raise req.fail("SHELL requires the arguments to be in JSON form")
    return ir.Shell(span=req.span, keyword=req.command, original=req.original, shell=shell)


def _parse_from(req: _Request) -> ir.From:
    args = req.args
    name: str | None = None
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _VALID_STAGE_NAME.fullmatch(name):
            raise StageError(
                f"invalid name for build stage: {go_quote(args[2])}, "
                "name can't start with a number or contain symbols",
                span=req.where.arg(-1),
            )
    elif len(args) != 1:
        raise req.fail("FROM requires either one or three arguments")
    platform = req.flags.add_string("platform")
    req.parse_flags()
    return ir.From(
        span=req.span,
        keyword=req.command,
        original=req.original,
        base=args[0],
        stage_name=name,
        platform=platform.value or None,
    )


def _parse_onbuild(req: _Request) -> ir.OnBuild:
    req.at_least_one("ONBUILD")
    req.parse_flags()
    trigger = trim_space(req.args[0]).upper()
    if trigger == "ONBUILD":
        raise req.fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", req.where.arg(0))
    if trigger in ("MAINTAINER", "FROM"):
        raise req.fail(f"{trigger} isn't allowed as an ONBUILD trigger", req.where.arg(0))
    expression = _ONBUILD_PREFIX.sub("", req.node.original, count=1)
    if req.node.heredocs:
        expression += "".join(f"\n{h.content}{h.name}" for h in req.node.heredocs)
    return ir.OnBuild(
        span=req.span, keyword=req.command, original=req.original, expression=expression
    )


def _parse_run(req: _Request) -> ir.Run:
    bf = req.flags
    device_flag = bf.add_strings("device")
    mount_flag = bf.add_strings("mount")
    network_flag = bf.add_string("network", ir.NetworkMode.DEFAULT.value)
    security_flag = bf.add_string("security", ir.SecurityMode.SANDBOX.value)
    req.parse_flags()
    files = tuple(
        ir.InlineFile(name=h.name, data=h.content, chomp=h.chomp) for h in req.node.heredocs
    )
    devices = []
    for value, index in zip(device_flag.values, device_flag.indices, strict=True):
        try:
            devices.append(parse_device(value))
        except InvalidInstructionError as err:
            err.span = req.where.flag(index)
            raise
    mounts = []
    escape = req.ctx.ast.escape
    for value, index in zip(mount_flag.values, mount_flag.indices, strict=True):
        try:
            mounts.append(parse_mount(value, escape=escape))
        except InvalidInstructionError as err:
            err.span = req.where.flag(index)
            raise
    try:
        network = ir.NetworkMode(network_flag.value)
    except ValueError:
        raise req.fail(
            f"invalid network mode {go_quote(network_flag.value)}",
            req.where.flag(network_flag.indices[-1]),
        ) from None
    try:
        security = ir.SecurityMode(security_flag.value)
    except ValueError:
        raise req.fail(
            f"security {go_quote(security_flag.value)} is not valid",
            req.where.flag(security_flag.indices[-1]),
        ) from None
    command = _cmdline(req)
    return ir.Run(
        span=req.span,
        keyword=req.command,
        original=req.original,
        command=command,
        prepend_shell=not req.node.json,
        breaks=_shell_breaks(req, command),
        heredocs=files,
        mounts=tuple(mounts),
        network=network,
        security=security,
        devices=tuple(devices),
        flags_used=bf.used(),
    )


def _heredoc_marker(word: str) -> Marker | None:
    """BuildKit's ``MustParseHeredoc``: the marker a word is, else ``None``."""
    if "<<" not in word:
        return None
    try:
        return parse_marker(word)
    except HeredocSyntaxError:
        return None


def _sources_and_dest(
    req: _Request, command: str
) -> tuple[tuple[str, ...], tuple[ir.InlineSource, ...], str]:
    *sources, dest = req.args
    if _heredoc_marker(dest) is not None:
        raise req.fail(f"{command} cannot accept a heredoc as a destination", req.where.arg(-1))
    bodies = {h.name: h.content for h in req.node.heredocs}
    paths: list[str] = []
    inline: list[ir.InlineSource] = []
    for src in sources:
        marker = _heredoc_marker(src)
        if marker is None:
            paths.append(src)
            continue
        content = bodies.get(marker.name, "")
        if marker.chomp:
            content = _LEADING_TABS.sub("", content)
        inline.append(ir.InlineSource(path=marker.name, data=content, expand=marker.expand))
    return tuple(paths), tuple(inline), dest


def _parse_copy(req: _Request) -> ir.Copy:
    if len(req.args) < 2:
        raise req.fail(
            "COPY requires at least two arguments, but only one was provided. "
            "Destination could not be determined"
        )
    bf = req.flags
    chown = bf.add_string("chown")
    from_flag = bf.add_string("from")
    chmod = bf.add_string("chmod")
    link = bf.add_bool("link")
    exclude = bf.add_strings("exclude")
    parents = bf.add_bool("parents")
    req.parse_flags()
    sources, inline, dest = _sources_and_dest(req, "COPY")
    from_ = from_flag.value or None
    if from_ is not None and from_has_variables(from_, req.ctx.ast.escape):
        raise req.fail(COPY_FROM_VARIABLE, req.where.flag(from_flag.indices[-1]))
    return ir.Copy(
        span=req.span,
        keyword=req.command,
        original=req.original,
        sources=sources,
        dest=dest,
        heredocs=inline,
        from_=from_,
        chown=chown.value or None,
        chmod=chmod.value or None,
        link=link.is_true,
        parents=parents.is_true,
        exclude=tuple(exclude.values),
    )


def _parse_add(req: _Request) -> ir.Add:
    if len(req.args) < 2:
        raise req.fail(
            "ADD requires at least two arguments, but only one was provided. "
            "Destination could not be determined"
        )
    bf = req.flags
    chown = bf.add_string("chown")
    chmod = bf.add_string("chmod")
    link = bf.add_bool("link")
    keep_git_dir = bf.add_bool("keep-git-dir")
    checksum = bf.add_string("checksum")
    unpack = bf.add_bool("unpack")
    exclude = bf.add_strings("exclude")
    req.parse_flags()
    sources, inline, dest = _sources_and_dest(req, "ADD")
    return ir.Add(
        span=req.span,
        keyword=req.command,
        original=req.original,
        sources=sources,
        dest=dest,
        heredocs=inline,
        chown=chown.value or None,
        chmod=chmod.value or None,
        link=link.is_true,
        exclude=tuple(exclude.values),
        checksum=checksum.value or None,
        keep_git_dir=keep_git_dir.is_true if keep_git_dir.used else None,
        unpack=unpack.is_true if unpack.used else None,
    )


def from_has_variables(value: str, escape: str = "\\") -> bool:
    """Whether shell processing with no variables set changes ``value`` (BuildKit's test)."""
    if "$" not in value and "'" not in value and '"' not in value and escape not in value:
        return False
    try:
        return Lexer(escape=escape).process_word(value, {}) != value
    except ExpansionError:
        return True


# --------------------------------------------------------------------------- HEALTHCHECK


def _parse_healthcheck(req: _Request) -> ir.Healthcheck:
    req.at_least_one("HEALTHCHECK")
    kind = req.args[0].upper()
    rest = req.args[1:]
    if kind == "NONE":
        if rest:
            raise req.fail("HEALTHCHECK NONE takes no arguments")
        return ir.Healthcheck(
            span=req.span, keyword=req.command, original=req.original, test=("NONE",)
        )
    bf = req.flags
    interval = bf.add_string("interval")
    timeout = bf.add_string("timeout")
    start_period = bf.add_string("start-period")
    start_interval = bf.add_string("start-interval")
    retries_flag = bf.add_string("retries")
    req.parse_flags()
    if kind != "CMD":
        raise req.fail(f"Unknown type {go_quote(kind)} in HEALTHCHECK (try CMD)", req.where.arg(0))
    command = rest if not rest or req.node.json else (" ".join(rest),)
    if not command:
        raise req.fail("Missing command after HEALTHCHECK CMD")
    test = ("CMD" if req.node.json else "CMD-SHELL", *command)

    durations = []
    for flag in (interval, timeout, start_period, start_interval):
        try:
            durations.append(_interval(flag.name, flag.value))
        except InvalidInstructionError as err:
            err.span = req.where.flag(flag.indices[-1])
            raise
    retries = 0
    if retries_flag.value:
        try:
            retries = _parse_int32(retries_flag.value)
        except InvalidInstructionError as err:
            err.span = req.where.flag(retries_flag.indices[-1])
            raise
        if retries < 0:
            raise req.fail(
                f"--retries cannot be negative ({retries})",
                req.where.flag(retries_flag.indices[-1]),
            )
    return ir.Healthcheck(
        span=req.span,
        keyword=req.command,
        original=req.original,
        test=test,
        interval=durations[0],
        timeout=durations[1],
        start_period=durations[2],
        start_interval=durations[3],
        retries=retries,
        breaks=_shell_breaks(req, command),
    )


_MILLISECOND = 1_000_000


def _interval(name: str, value: str) -> int:
    """BuildKit's ``parseOptInterval``: nanoseconds, 0 when empty; at least 1ms otherwise."""
    if not value:
        return 0
    nanos = parse_duration(value)
    if nanos == 0:
        return 0
    if nanos < _MILLISECOND:
        raise InvalidInstructionError(f"Interval {go_quote(name)} cannot be less than 1ms")
    return nanos


def _parse_int32(value: str) -> int:
    """Go's ``strconv.ParseInt(value, 10, 32)`` with its error text."""
    digits = value[1:] if value[:1] in ("+", "-") else value
    if not digits or not digits.isascii() or not digits.isdigit():
        raise InvalidInstructionError(
            f"strconv.ParseInt: parsing {go_quote(value)}: invalid syntax"
        )
    number = int(value)
    if not -(2**31) <= number < 2**31:
        raise InvalidInstructionError(
            f"strconv.ParseInt: parsing {go_quote(value)}: value out of range"
        )
    return number


# --------------------------------------------------------------------------- the whole file


@dataclass(slots=True)
class _StageDraft:
    from_: ir.From
    index: int
    instructions: list[ir.Instruction]


class _Analyzer:
    __slots__ = ("ast", "collect", "ctx", "errors", "parsed", "warnings")

    def __init__(self, ast: AST, *, collect: bool) -> None:
        self.ast = ast
        self.collect = collect
        self.ctx = _Context(ast)
        self.errors: list[DockerfileError] = []
        self.warnings: list[Diagnostic] = list(ast.warnings)
        self.parsed: list[tuple[Node, ir.Instruction]] = []

    def report(self, err: DockerfileError) -> None:
        if not self.collect:
            raise err
        self.errors.append(err)

    def node_span(self, node: Node) -> Span:
        if node.span is not None:
            return node.span
        return Span(file=self.ast.path, line=node.start_line, end_line=node.end_line)

    def run(self) -> Analysis:
        stages: list[_StageDraft] = []
        global_args: list[ir.Arg] = []
        reported_no_stage = False
        for node in self.ast.nodes:
            where = _Where(self.ctx, node, 0, node.flags)
            span = self.node_span(node)
            try:
                instr = _parse_node(self.ctx, node, span=span, where=where)
            except DockerfileError as err:
                self.report(err)
                if node.cmd.lower() == "from":  # keep later instructions in a stage
                    placeholder = ir.From(span=span, keyword=node.cmd, original="", base="")
                    stages.append(_StageDraft(placeholder, len(stages), []))
                continue
            self.parsed.append((node, instr))
            if isinstance(instr, ir.From):
                stages.append(_StageDraft(instr, len(stages), []))
                continue
            if isinstance(instr, ir.OnBuild):
                instr = self.with_trigger(node, instr, span)
            if not stages:
                if isinstance(instr, ir.Arg):
                    global_args.append(instr)
                elif not reported_no_stage:
                    reported_no_stage = True
                    self.report(
                        StageError("no build stage in current context", span=where.keyword())
                    )
                continue
            stages[-1].instructions.append(instr)
        dockerfile = None
        if not self.errors:
            dockerfile = ir.Dockerfile(
                path=self.ast.path,
                stages=tuple(
                    ir.Stage(
                        name=d.from_.stage_name,
                        base=d.from_.base,
                        platform=d.from_.platform,
                        instructions=tuple(d.instructions),
                        span=d.from_.span,
                        index=d.index,
                        from_=d.from_,
                    )
                    for d in stages
                ),
                global_args=tuple(global_args),
                directives=self.ast.directives,
                diagnostics=tuple(self.warnings),
                escape=self.ast.escape,
            )
        return Analysis(
            dockerfile=dockerfile,
            errors=tuple(self.errors),
            warnings=tuple(self.warnings),
            instruction_count=len(self.ast.nodes),
            parsed=tuple(self.parsed),
        )

    def with_trigger(self, node: Node, onbuild: ir.OnBuild, span: Span) -> ir.OnBuild:
        """Parse the trigger of an ONBUILD; a failure is a warning (it fails in child builds)."""
        sub = node.sub
        if sub is None:
            return onbuild
        sub = replace(
            sub,
            heredocs=node.heredocs,
            breaks=_breaks_in(node, sub.original),
            start_line=node.start_line,
            end_line=node.end_line,
            span=span,
        )
        where = _Where(self.ctx, node, 1 + len(node.flags), sub.flags)
        try:
            trigger = _parse_node(self.ctx, sub, span=span, where=where)
        except DockerfileError as err:
            self.warnings.append(
                Diagnostic(
                    level=Level.WARNING,
                    rule="InvalidOnbuildTrigger",
                    message=f"ONBUILD trigger fails in builds that use this image: {err.message}",
                    span=err.span,
                )
            )
            return onbuild
        return replace(onbuild, trigger=trigger)


__all__ = [
    "COPY_FROM_VARIABLE",
    "INSTRUCTIONS",
    "Analysis",
    "analyze",
    "check",
    "from_has_variables",
    "to_ir",
]
