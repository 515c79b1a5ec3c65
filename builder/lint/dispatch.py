"""Rules BuildKit fires while it dispatches a stage's instructions, with the stage's state.

Each stage is walked in file order with what BuildKit's ``dispatchState`` knows at that point:
the environment (ENV, ARGs in scope, the base image's or base stage's variables), whether a
SHELL or an absolute WORKDIR was set, and which of CMD, ENTRYPOINT and HEALTHCHECK were seen.
A stage built on another stage starts from that stage's final state.

UndefinedVar needs the base image's environment: when the base is an image the store does not
have, its variables are unknown and UndefinedVar stays silent in that stage (BuildKit always
has the image config, pybuild's ``check`` does not pull).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from builder.errors import BuildError, Diagnostic
from builder.fs import paths
from builder.lint import rules
from builder.lint.facts import Facts, Item
from builder.lint.fromline import meta_args, platform_args
from builder.lint.inputs import IgnoreRules
from builder.oci.types import Platform
from builder.syntax import ir
from builder.syntax.expand import Lexer
from builder.syntax.flags import suggest

_SECRET = re.compile(
    r"(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)",
    re.IGNORECASE,
)
_SECRET_ALLOWED = re.compile(r"(?:_|^)(?:public|file|version)(?:_|$)", re.IGNORECASE)
_SBOM_ARGS = frozenset({"BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"})
_ROOT_PATTERNS = frozenset({"*", "**", "**/*"})


@dataclass(slots=True)
class _State:
    """What BuildKit's dispatchState holds that the rules read (mutable: one walk)."""

    env: dict[str, str] = field(default_factory=dict)
    env_known: bool = True  # False: the base image's variables are unknown
    declared: set[str] = field(default_factory=set)  # BuildKit's d.buildArgs keys
    shell: bool = False
    workdir_set: bool = False

    def inherit(self) -> _State:
        return _State(
            env=dict(self.env),
            env_known=self.env_known,
            declared=set(self.declared),
            shell=self.shell,
            workdir_set=self.workdir_set,
        )


@dataclass(slots=True)
class _Walk:
    facts: Facts
    lexer: Lexer
    global_env: dict[str, str]
    ignore: IgnoreRules | None
    found: list[Diagnostic] = field(default_factory=list)
    final: dict[str, _State] = field(default_factory=dict)  # stage name -> state at its end

    # ----------------------------------------------------------------- variables

    def expand(self, item: Item, word: str, state: _State, lexer: Lexer | None = None) -> str:
        """``word`` expanded with the stage's environment; reports undefined variables."""
        try:
            match = (lexer or self.lexer).process_word_with_matches(word, state.env)
        except BuildError:
            return word
        self.report_unmatched(item, match.unmatched, state)
        return match.result

    def report_unmatched(self, item: Item, unmatched: frozenset[str], state: _State) -> None:
        if not state.env_known:
            return
        for name in sorted(unmatched - state.declared - _SBOM_ARGS):
            guess = suggest(name, list(state.env), case_sensitive=True)
            message = f"Usage of undefined variable '${name}'"
            if guess is not None:
                message += f" (did you mean ${guess}?)"
            self.found.append(rules.UNDEFINED_VAR.finding(message, item.where.whole()))

    # ----------------------------------------------------------------- stages

    def start(self, item: Item, instr: ir.From) -> _State:
        base = self.lexer.process_word(instr.base, self.global_env)
        earlier = self.final.get(base)
        if earlier is not None:
            return earlier.inherit()
        if base == "scratch":
            return _State()
        inputs = self.facts.inputs
        platform = inputs.target_platform
        if instr.platform:
            try:
                platform = Platform.parse(self.lexer.process_word(instr.platform, self.global_env))
            except BuildError:
                platform = inputs.target_platform
        image = inputs.base_image(base, platform) if inputs.base_image is not None else None
        if image is None:
            return _State(env_known=False)
        actual = image.platform
        if (actual.os, actual.architecture) != (platform.os, platform.architecture):
            self.found.append(
                rules.INVALID_BASE_IMAGE_PLATFORM.finding(
                    f'Base image {base} was pulled with platform "{actual}", '
                    f'expected "{platform}" for current build',
                    item.where.whole(),
                )
            )
        return _State(env=dict(image.env), shell=image.shell)

    def stage(self, items: list[Item]) -> None:
        head = items[0]
        assert isinstance(head.instr, ir.From)
        try:
            state = self.start(head, head.instr)
        except BuildError:
            return
        seen: dict[str, Item] = {}
        for item in items[1:]:
            self.instruction(item, state, seen)
        if head.instr.stage_name is not None:
            self.final[head.instr.stage_name] = state

    # ----------------------------------------------------------------- instructions

    def instruction(self, item: Item, state: _State, seen: dict[str, Item]) -> None:
        instr = item.instr
        match instr:
            case ir.Env():
                for pair in instr.pairs:
                    if pair.legacy:
                        self.legacy(item, instr.keyword)
                    self.secret(item, "ENV", pair.key)
                    key = self.expand(item, pair.key, state)
                    state.env[key] = self.expand(item, pair.value, state)
            case ir.Label():
                for pair in instr.pairs:
                    if pair.legacy:
                        self.legacy(item, instr.keyword)
                    self.expand(item, pair.key, state)
                    self.expand(item, pair.value, state)
            case ir.Arg():
                self.arg(item, instr, state)
            case ir.Copy() | ir.Add():
                self.copy(item, instr, state)
            case ir.Workdir():
                path = self.expand(item, instr.path, state)
                if not state.workdir_set and not posixpath.isabs(path):
                    self.found.append(
                        rules.WORKDIR_RELATIVE_PATH.finding(
                            f'Relative workdir "{path}" can have unexpected results if the '
                            "base image changes",
                            item.where.whole(),
                        )
                    )
                state.workdir_set = True
            case ir.User():
                self.expand(item, instr.user, state)
            case ir.Volume():
                for path in instr.paths:
                    self.expand(item, path, state)
            case ir.StopSignal():
                self.expand(item, instr.signal, state)
            case ir.Expose():
                self.expose(item, instr, state)
            case ir.Shell():
                state.shell = True
            case ir.Cmd() | ir.Entrypoint():
                self.once(item, seen)
                if instr.prepend_shell and not state.shell:
                    self.found.append(
                        rules.JSON_ARGS_RECOMMENDED.finding(
                            f"JSON arguments recommended for {instr.keyword} to prevent "
                            "unintended behavior related to OS signals",
                            item.where.whole(),
                        )
                    )
            case ir.Healthcheck():
                self.once(item, seen)
            case ir.Run() | ir.OnBuild() | ir.Maintainer() | ir.From():
                pass

    def legacy(self, item: Item, keyword: str) -> None:
        self.found.append(
            rules.LEGACY_KEY_VALUE_FORMAT.finding(
                f'"{keyword} key=value" should be used instead of legacy "{keyword} key value" '
                "format",
                item.where.whole(),
            )
        )

    def secret(self, item: Item, instruction: str, key: str) -> None:
        if _SECRET.search(key) and not _SECRET_ALLOWED.search(key):
            self.found.append(
                rules.SECRETS_USED_IN_ARG_OR_ENV.finding(
                    "Do not use ARG or ENV instructions for sensitive data "
                    f'({instruction} "{key}")',
                    item.where.whole(),
                )
            )

    def once(self, item: Item, seen: dict[str, Item]) -> None:
        """MultipleInstructionsDisallowed, reported at the earlier instruction (the ignored one)."""
        kind = item.node.cmd.lower()
        earlier = seen.get(kind)
        if earlier is not None:
            self.found.append(
                rules.MULTIPLE_INSTRUCTIONS_DISALLOWED.finding(
                    f"Multiple {item.node.cmd} instructions should not be used in the same stage "
                    "because only the last one will be used",
                    earlier.where.whole(),
                )
            )
        seen[kind] = item

    def arg(self, item: Item, instr: ir.Arg, state: _State) -> None:
        build_args = self.facts.inputs.build_args
        for decl in instr.args:
            self.secret(item, "ARG", decl.key)
            value: str | None
            if decl.key in build_args:
                value = build_args[decl.key]
            elif decl.default is not None:
                value = self.expand(item, decl.default, state)
            else:
                value = self.global_env.get(decl.key)
            if value is not None:
                state.env[decl.key] = value
            state.declared.add(decl.key)

    def copy(self, item: Item, instr: ir.Copy | ir.Add, state: _State) -> None:
        sources = [self.expand(item, src, state) for src in instr.sources]
        self.expand(item, instr.dest, state)
        for flag in (instr.chown, instr.chmod):
            if flag is not None:
                self.expand(item, flag, state)
        raw = Lexer(escape="\\", skip_process_quotes=True)
        for heredoc in instr.heredocs:
            if heredoc.expand:
                self.expand(item, heredoc.data, state, raw)
        if isinstance(instr, ir.Copy) and instr.from_ is not None:
            return
        command = "Add" if isinstance(instr, ir.Add) else "Copy"
        for src in sources:
            if isinstance(instr, ir.Add) and _remote(src):
                continue
            self.ignored(item, command, src)

    def ignored(self, item: Item, command: str, src: str) -> None:
        """CopyIgnoredFile (BuildKit's ``validateCopySourcePath``)."""
        ignore = self.ignore
        if ignore is None or ignore.exclusions:
            return
        path = paths.clean(src)
        if path in (".", "/") and not any(
            not p.exclusion and p.text in _ROOT_PATTERNS for p in ignore.patterns
        ):
            return
        if ignore.matches_or_parent_matches(path):
            self.found.append(
                rules.COPY_IGNORED_FILE.finding(
                    f'Attempting to {command} file "{path}" that is excluded by .dockerignore',
                    item.where.whole(),
                )
            )

    def expose(self, item: Item, instr: ir.Expose, state: _State) -> None:
        for raw in instr.ports:
            try:
                ports = self.lexer.process_words(raw, state.env)
            except BuildError:
                continue
            for port in ports:
                ip, host, container = _split_port(port)
                proto = container.partition("/")[2]
                if proto != proto.lower():
                    self.found.append(
                        rules.EXPOSE_PROTO_CASING.finding(
                            f"Defined protocol '{port}' in EXPOSE instruction should be lowercase",
                            item.where.whole(),
                        )
                    )
                if ip or host:
                    self.found.append(
                        rules.EXPOSE_INVALID_FORMAT.finding(
                            "EXPOSE instruction should not define an IP address or host-port "
                            f"mapping, found '{port}'",
                            item.where.whole(),
                        )
                    )


def _split_port(raw: str) -> tuple[str, str, str]:
    """BuildKit's ``splitParts``: ``[ip:]host:container`` into its three parts."""
    parts = raw.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def _remote(src: str) -> bool:
    lower = src.lower()
    return lower.startswith(("http://", "https://", "git@")) or "://" in lower


def _stages(facts: Facts) -> list[list[Item]]:
    stages: list[list[Item]] = []
    for item in facts.items:
        if isinstance(item.instr, ir.From):
            stages.append([item])
        elif item.stage >= 0 and stages:
            stages[-1].append(item)
    return stages


def check(facts: Facts) -> Iterator[Diagnostic]:
    dockerfile = facts.dockerfile
    if dockerfile is None:
        return
    inputs = facts.inputs
    lexer = Lexer(escape=dockerfile.escape)
    last = dockerfile.stages[-1].name if dockerfile.stages else None
    env = meta_args(facts, lexer, platform_args(inputs, last), inputs.build_args)
    if env is None:
        return
    walk = _Walk(
        facts=facts,
        lexer=lexer,
        global_env=env,
        ignore=inputs.ignore,
    )
    for index, items in enumerate(_stages(facts)):
        before = len(walk.found)
        walk.stage(items)
        if inputs.reachable is not None and index not in inputs.reachable:
            del walk.found[before:]
    yield from walk.found
