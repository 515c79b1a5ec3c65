"""``ir.Dockerfile`` + request -> :class:`BuildPlan`, with BuildKit's dispatch semantics.

This is the pure half of BuildKit's ``dockerfile2llb``: it decides what every step does, with
which environment, user and working directory, and what the image config and history become;
the scheduler decides whether a step runs or comes from the cache.

The order of work (and so of errors) follows BuildKit: global ARGs (with ``--build-arg``
overrides and the automatic platform ARGs), every stage's FROM expanded, the target found,
every stage's ``--from`` references checked (bad index, cycles), then only the stages the
target needs are resolved (base image configs, ONBUILD triggers) and dispatched, in file order.

Variables: each stage has an *environment* (BuildKit's LLB state env): the image's ENV, then
ARGs and ENVs in order. Words are expanded against it, RUN gets it. The image config's Env only
gets ENV. A global ARG is visible in a stage only when the stage declares it (``ARG NAME``).
Proxy build-args (``HTTP_PROXY``...) reach every RUN without a declaration but stay out of its
cache key and history.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Final, assert_never

from builder.errors import (
    BuildError,
    Diagnostic,
    InvalidInstructionError,
    Level,
    Span,
    StageError,
    with_span,
)
from builder.fs import paths
from builder.oci.types import Healthcheck, ImageConfig, Platform
from builder.plan import history as hist
from builder.plan.checks import (
    check_chmod,
    check_signal,
    check_text,
    normalize_workdir,
    parse_platform,
    parse_port,
)
from builder.plan.mounts import plan_mounts
from builder.plan.named import context_key
from builder.plan.scope import (
    BUILTIN_ARGS,
    DEFAULT_PATH,
    NON_ENV_ARGS,
    PLATFORM_ARGS,
    PROXY_ARGS,
    PROXY_KINDS,
    StageInfo,
    State,
    empty_image,
)
from builder.plan.sources import classify_sources
from builder.plan.steps import (
    Base,
    BuildPlan,
    ConfigStep,
    CopyStep,
    FromContext,
    FromImage,
    FromScratch,
    FromStage,
    ImageBase,
    ImageConfigResolver,
    InlineFile,
    PlanRequest,
    ResolvedImage,
    RunFile,
    RunMount,
    RunStep,
    ScratchBase,
    Source,
    StageBase,
    StagePlan,
    Step,
    WorkdirStep,
)
from builder.syntax import ir
from builder.syntax.expand import Lexer
from builder.syntax.flags import suggest
from builder.syntax.gotext import go_quote
from builder.syntax.heredoc import HeredocSyntaxError, parse_marker
from builder.syntax.parser import parse
from builder.syntax.substitute import substitute
from builder.syntax.transform import to_ir

EMPTY_IMAGE: Final = "scratch"
DEFAULT_HOSTNAME: Final = "buildkitsandbox"

_INDEX = re.compile(r"[+-]?[0-9]+")
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)
_PIPES_DIR = "/dev/pipes/"


def plan(df: ir.Dockerfile, request: PlanRequest, resolver: ImageConfigResolver) -> BuildPlan:
    """Plan the build of ``request.target`` (default: the last stage) of ``df``.

    Pure: the only way out is ``resolver`` (base and ``--from`` images of needed stages).
    Raises :class:`~builder.errors.StageError` / :class:`InvalidInstructionError` /
    :class:`~builder.errors.ExpansionError` with the span of the instruction at fault.
    """
    return _Planner(df, request, resolver).run()


def _upper_keyword(text: str) -> str:
    """BuildKit's ``uppercaseCmd``: the first word upper-cased."""
    head, sep, rest = text.partition(" ")
    return head.upper() + sep + rest


def _parse_trigger(expression: str, span: Span) -> ir.Instruction:
    """An ONBUILD trigger parsed on its own (default escape), located at the child's FROM."""
    try:
        df = to_ir(parse(f"FROM {EMPTY_IMAGE}\n{expression}", path=span.file))
    except BuildError as err:
        err.span = span
        raise
    if len(df.stages) != 1 or len(df.stages[0].instructions) != 1:
        raise InvalidInstructionError("onbuild trigger should be a single expression", span=span)
    return replace(df.stages[0].instructions[0], span=span)


# --------------------------------------------------------------------------- the planner


class _Planner:
    def __init__(
        self, df: ir.Dockerfile, request: PlanRequest, resolver: ImageConfigResolver
    ) -> None:
        self.df = df
        self.request = request
        self.resolver = resolver
        self.build_args = dict(request.build_args)
        self.lexer = Lexer(escape=df.escape)
        self.global_vars: dict[str, str] = {}
        self.infos: list[StageInfo] = []
        self.names: dict[str, int] = {}
        self.resolved: dict[tuple[str, str], ResolvedImage] = {}
        self.consumed: set[str] = set()
        self.results: dict[int, State] = {}
        self.hostname = self.build_args.get("BUILDKIT_SANDBOX_HOSTNAME") or DEFAULT_HOSTNAME
        self.proxy_env = self._proxy_env()

    # ----------------------------------------------------------------- whole build

    def run(self) -> BuildPlan:
        df = self.df
        if not df.stages:
            raise StageError("dockerfile contains no stages to build")
        self._global_args()
        self._stage_infos()
        target = self._target_index()
        self._dependency_graph()
        reachable = self._resolve_stages(target)
        stages: list[StagePlan] = []
        for index in sorted(reachable):
            stages.append(self._dispatch_stage(index, is_target=index == target))
        dependencies = tuple((i, tuple(sorted(self._stage_deps(i)))) for i in sorted(reachable))
        return BuildPlan(
            stages=tuple(stages),
            target_index=target,
            dependencies=dependencies,
            warnings=self._warnings(),
        )

    def _target_index(self) -> int:
        name = self.request.target
        if not name:
            return len(self.df.stages) - 1
        stage = self.df.stage(name)
        if stage is None:
            message = f"target stage {go_quote(name)} could not be found"
            names = [info.stage_name for info in self.infos]
            guess = suggest(name, names, case_sensitive=True)
            if guess is not None:
                raise StageError(
                    f"{message} (did you mean {guess}?)", hint=f"did you mean {guess}?"
                )
            raise StageError(message)
        return stage.index

    def _global_args(self) -> None:
        """Automatic platform ARGs, then the ARGs before the first FROM (BuildKit's meta args)."""
        req = self.request
        bp, tp = req.build_platform, req.platform
        target_name = req.target or self.df.stages[-1].name or ""
        defaults = (
            ("BUILDPLATFORM", str(bp)),
            ("BUILDOS", bp.os),
            ("BUILDOSVERSION", bp.os_version),
            ("BUILDARCH", bp.architecture),
            ("BUILDVARIANT", bp.variant),
            ("TARGETPLATFORM", str(tp)),
            ("TARGETOS", tp.os),
            ("TARGETOSVERSION", tp.os_version),
            ("TARGETARCH", tp.architecture),
            ("TARGETVARIANT", tp.variant),
            ("TARGETSTAGE", target_name or "default"),
        )
        for key, default in defaults:
            self.global_vars[key] = self.build_args.get(key, default)
        for arg in self.df.global_args:
            for decl in arg.args:
                self.consumed.add(decl.key)
                value: str | None
                if decl.key in self.build_args:
                    value = self.build_args[decl.key]
                elif decl.default is not None:
                    value = self._expand(decl.default, self.global_vars, arg.span)
                else:
                    value = None
                if value is not None:
                    self.global_vars.pop(decl.key, None)
                    self.global_vars[decl.key] = value

    def _expand(self, word: str, env: Mapping[str, str], span: Span, escape: str = "") -> str:
        lexer = self.lexer
        if escape and escape != lexer.escape:
            lexer = Lexer(escape=escape)
        try:
            return lexer.process_word(word, env)
        except BuildError as err:
            raise with_span(err, span) from None

    def _stage_infos(self) -> None:
        """Every stage's FROM, expanded with the global ARGs (BuildKit checks all stages)."""
        single = len(self.df.stages) == 1
        for stage in self.df.stages:
            span = stage.span
            base = self._expand(stage.base, self.global_vars, span)
            if base == "":
                raise InvalidInstructionError(
                    f"base name ({stage.base}) should not be blank", span=span
                )
            platform: Platform | None = None
            if stage.platform:
                value = self._expand(stage.platform, self.global_vars, span)
                if value == "":
                    raise InvalidInstructionError(
                        f"empty platform value from expression {stage.platform}", span=span
                    )
                try:
                    platform = parse_platform(value, self.request.platform)
                except InvalidInstructionError as err:
                    raise InvalidInstructionError(
                        f"failed to parse platform {stage.platform}: {err.message}", span=span
                    ) from None
            base_stage = self.names.get(base)  # only earlier stages, exact (lower-case) name
            replaced = bool(stage.name) and self._is_named_context(stage.name or "")
            if replaced:
                # BuildKit: the context replaces the whole stage; the resolver answers its name
                base, base_stage = stage.name or "", None
            if stage.name:
                self.names[stage.name] = stage.index
            stage_name = stage.name or f"stage-{stage.index}"
            self.infos.append(
                StageInfo(
                    stage=stage,
                    stage_name=stage_name,
                    display_name="" if single else stage_name,
                    base_ref=base,
                    platform=platform,
                    base_stage=base_stage,
                    deps={},
                    replaced=replaced,
                )
            )

    def _is_named_context(self, name: str) -> bool:
        named = self.request.named_contexts
        return bool(named) and context_key(name) in named

    # ----------------------------------------------------------------- stage graph

    def _copy_from(self, value: str, span: Span) -> int | str:
        """``COPY --from`` value -> stage index, or the image reference it names."""
        if _INDEX.fullmatch(value) is not None:
            index = int(value)
            if not 0 <= index < len(self.df.stages):
                raise StageError(f"invalid stage index {index}", span=span)
            return index
        found = self.names.get(value.lower())
        return value if found is None else found

    def _mount_from(self, value: str) -> int | str:
        """``--mount from=`` value -> stage index (by name only), or an image reference."""
        found = self.names.get(value.lower())
        return value if found is None else found

    def _instruction_deps(self, instr: ir.Instruction) -> list[int]:
        out: list[int] = []
        if isinstance(instr, ir.Copy) and instr.from_ is not None:
            ref = self._copy_from(instr.from_, instr.span)
            if isinstance(ref, int):
                out.append(ref)
        elif isinstance(instr, ir.Run):
            for mount in instr.mounts:
                if mount.from_ is not None:
                    ref = self._mount_from(mount.from_)
                    if isinstance(ref, int):
                        out.append(ref)
        return out

    def _dependency_graph(self) -> None:
        for info in self.infos:
            if info.replaced:
                continue  # its instructions are not run
            for instr in info.stage.instructions:
                for dep in self._instruction_deps(instr):
                    info.deps.setdefault(dep, instr.span)
        self._check_cycles()

    def _check_cycles(self) -> None:
        visited: set[int] = set()

        def visit(index: int, path: set[int], chain: list[Span]) -> list[Span] | None:
            if index in visited:
                return None
            visited.add(index)
            path.add(index)
            for dep, span in self.infos[index].deps.items():
                step = [*chain, span]
                if dep in path:
                    return step
                found = visit(dep, path, step)
                if found is not None:
                    return found
            path.discard(index)
            return None

        for info in self.infos:
            chain = visit(info.stage.index, set(), [])
            if chain is not None:
                raise StageError(
                    f"circular dependency detected on stage: {info.stage_name}",
                    span=chain[-1],
                )

    def _stage_deps(self, index: int) -> set[int]:
        info = self.infos[index]
        deps = set(info.deps)
        if info.base_stage is not None:
            deps.add(info.base_stage)
        return deps

    def _reachable(self, target: int) -> set[int]:
        seen: set[int] = set()
        todo = [target]
        while todo:
            index = todo.pop()
            if index in seen:
                continue
            seen.add(index)
            todo.extend(self._stage_deps(index))
        return seen

    def _resolve(self, ref: str, platform: Platform, span: Span) -> ResolvedImage:
        key = (ref, str(platform))
        found = self.resolved.get(key)
        if found is None:
            try:
                found = self.resolver.resolve(ref, platform)
            except BuildError as err:
                raise with_span(err, span) from None
            self.resolved[key] = found
        return found

    def _stage_platform(self, info: StageInfo) -> Platform:
        return info.platform or self.request.platform

    def _resolve_stages(self, target: int) -> set[int]:
        """Reachable stages, with their base images resolved and ONBUILD triggers parsed
        (triggers may add ``--from`` dependencies, so repeat until nothing changes)."""
        while True:
            reachable = self._reachable(target)
            grew = False
            for index in sorted(reachable):
                info = self.infos[index]
                if info.triggers is not None:
                    continue
                expressions: tuple[str, ...] = ()
                if info.replaced:
                    self._resolve(info.base_ref, self._stage_platform(info), info.stage.span)
                elif info.base_stage is not None:
                    base_info = self.infos[info.base_stage]
                    instructions = () if base_info.replaced else base_info.stage.instructions
                    expressions = tuple(
                        i.expression for i in instructions if isinstance(i, ir.OnBuild)
                    )
                elif info.base_ref != EMPTY_IMAGE:
                    image = self._resolve(
                        info.base_ref, self._stage_platform(info), info.stage.span
                    )
                    expressions = image.config.config.on_build
                triggers = tuple(_parse_trigger(e, info.stage.span) for e in expressions)
                info.triggers = triggers
                for trigger in triggers:
                    for dep in self._instruction_deps(trigger):
                        if dep == index:
                            raise StageError(
                                f"circular dependency detected on stage: {info.stage_name}",
                                span=info.stage.span,
                            )
                        if dep not in info.deps:
                            info.deps[dep] = info.stage.span
                            grew = True
            if not grew:
                return reachable

    # ----------------------------------------------------------------- dispatch

    def _dispatch_stage(self, index: int, *, is_target: bool) -> StagePlan:
        info = self.infos[index]
        stage = info.stage
        base: Base
        if info.base_stage is not None:
            state = self.results[info.base_stage].child()
            base = StageBase(index=info.base_stage)
        elif info.base_ref == EMPTY_IMAGE:
            platform = self.request.platform
            state = State(empty_image(platform), platform, {}, [])
            base = ScratchBase()
        else:
            platform = self._stage_platform(info)
            resolved = self._resolve(info.base_ref, platform, stage.span)
            state = State(replace(resolved.config, created=None), platform, {}, [])
            base = ImageBase(ref=info.base_ref, platform=platform, resolved=resolved)
        state.on_build = []  # triggers ran above; they are not inherited further
        if state.platform.os != "windows" and not any(
            e.partition("=")[0] == "PATH" for e in state.env
        ):
            state.env.append(f"PATH={DEFAULT_PATH}")
        for item in state.env:
            key, _, value = item.partition("=")
            state.set_var(key, value)
        if state.workdir:
            state.workdir = normalize_workdir(state.workdir, state.workdir)

        steps: list[Step] = []
        for trigger in info.triggers or ():
            steps.append(self._dispatch(state, info, trigger, escape="\\", onbuild=True))
        for instr in () if info.replaced else stage.instructions:
            steps.append(self._dispatch(state, info, instr, escape=self.df.escape, onbuild=False))
        self.results[index] = state

        config = state.to_config()
        if is_target and self.request.labels:
            labels = dict(config.config.labels)
            labels.update(self.request.labels)
            config = replace(
                config, config=replace(config.config, labels=tuple(sorted(labels.items())))
            )
        if is_target and self.request.platform_explicit:
            config = self._with_target_platform(config)
        return StagePlan(
            index=index,
            name=stage.name,
            display_name=info.display_name,
            base=base,
            platform=state.platform,
            steps=tuple(steps),
            config=config,
            span=stage.span,
        )

    def _with_target_platform(self, config: ImageConfig) -> ImageConfig:
        tp = self.request.platform
        same = (tp.os, tp.architecture) == (config.os, config.architecture)
        config = replace(config, os=tp.os, architecture=tp.architecture)
        if tp.variant or not same:
            config = replace(config, variant=tp.variant)
        if tp.os_version or not same:
            config = replace(config, os_version=tp.os_version)
        if tp.os_features:
            config = replace(config, os_features=tp.os_features)
        return config

    def _dispatch(
        self, state: State, info: StageInfo, instr: ir.Instruction, *, escape: str, onbuild: bool
    ) -> Step:
        text = _upper_keyword(instr.original)
        span = instr.span
        try:
            if isinstance(instr, ir.Arg):
                return self._arg(state, instr, text, onbuild, escape)
            node = substitute(instr, state.vars, escape=escape)
            check_text(node, node.keyword.upper())
            return self._dispatch_node(state, info, node, text, onbuild)
        except BuildError as err:
            raise with_span(err, span) from None

    def _config_step(
        self, state: State, node: ir.Instruction, text: str, onbuild: bool, created_by: str | None
    ) -> ConfigStep:
        history = None
        if created_by is not None:
            history = hist.entry(created_by, layer=False)
            state.history.append(history)
        return ConfigStep(
            span=node.span,
            text=text,
            onbuild=onbuild,
            history=history,
            instruction=node.keyword.upper(),
        )

    def _dispatch_node(
        self, state: State, info: StageInfo, node: ir.Instruction, text: str, onbuild: bool
    ) -> Step:
        match node:
            case ir.Run():
                return self._run(state, info, node, text, onbuild)
            case ir.Copy() | ir.Add():
                return self._copy(state, info, node, text, onbuild)
            case ir.Workdir():
                return self._workdir(state, node, text, onbuild)
            case ir.Env():
                words = []
                for pair in node.pairs:
                    words.append(f"{pair.key}={pair.value}")
                    state.set_var(pair.key, pair.value)
                    state.set_env(pair.key, pair.value)
                return self._config_step(state, node, text, onbuild, " ".join(["ENV", *words]))
            case ir.Label():
                words = []
                for pair in node.pairs:
                    state.labels[pair.key] = pair.value
                    words.append(f"{pair.key}={pair.value}")
                return self._config_step(state, node, text, onbuild, " ".join(["LABEL", *words]))
            case ir.Cmd():
                args = state.with_shell(node.command) if node.prepend_shell else node.command
                state.cmd = args
                state.args_escaped = True
                state.cmd_set = True
                return self._config_step(
                    state, node, text, onbuild, f"CMD {hist.go_quoted_list(args)}"
                )
            case ir.Entrypoint():
                args = state.with_shell(node.command) if node.prepend_shell else node.command
                state.entrypoint = args
                if not state.cmd_set:
                    state.cmd = ()
                return self._config_step(
                    state, node, text, onbuild, f"ENTRYPOINT {hist.go_quoted_list(args)}"
                )
            case ir.Healthcheck():
                state.healthcheck = Healthcheck(
                    test=node.test,
                    interval=node.interval,
                    timeout=node.timeout,
                    start_period=node.start_period,
                    start_interval=node.start_interval,
                    retries=node.retries,
                )
                return self._config_step(
                    state, node, text, onbuild, f"HEALTHCHECK {hist.healthcheck_text(node)}"
                )
            case ir.Expose():
                ports = [p for raw in node.ports for p in parse_port(raw)]
                state.ports.update(ports)
                return self._config_step(
                    state, node, text, onbuild, f"EXPOSE {hist.go_list(ports)}"
                )
            case ir.User():
                state.user = node.user
                return self._config_step(state, node, text, onbuild, f"USER {node.user}")
            case ir.Volume():
                state.volumes.update(node.paths)
                return self._config_step(
                    state, node, text, onbuild, f"VOLUME {hist.go_list(node.paths)}"
                )
            case ir.StopSignal():
                check_signal(node.signal)
                state.stop_signal = node.signal
                return self._config_step(state, node, text, onbuild, f"STOPSIGNAL {node.signal}")
            case ir.Shell():
                state.shell = node.shell
                return self._config_step(
                    state, node, text, onbuild, f"SHELL {hist.go_list(node.shell)}"
                )
            case ir.Maintainer():
                state.author = node.maintainer
                return self._config_step(
                    state, node, text, onbuild, f"MAINTAINER {node.maintainer}"
                )
            case ir.OnBuild():
                state.on_build.append(node.expression)
                return self._config_step(state, node, text, onbuild, None)
            case ir.Arg():
                return self._arg(state, node, text, onbuild, self.df.escape)
            case ir.From():
                raise StageError("FROM is not allowed inside a stage")
            case _:
                assert_never(node)

    # ----------------------------------------------------------------- instructions

    def _arg(self, state: State, node: ir.Arg, text: str, onbuild: bool, escape: str) -> ConfigStep:
        words = []
        for decl in node.args:
            key = decl.key
            self.consumed.add(key)
            has_value = key in self.build_args
            value = decl.default
            if value is None and not has_value:
                value = self.global_vars.get(key)
            if has_value:
                value = self.build_args[key]
            elif decl.default is not None:
                value = self._expand(decl.default, state.vars, node.span, escape)
            if value is not None:
                check_text((key, value), "ARG")
            if value is not None and key not in NON_ENV_ARGS:
                state.set_var(key, value)
            state.build_args.append((key, value))
            words.append(key if value is None else f"{key}={value}")
        return self._config_step(state, node, text, onbuild, " ".join(["ARG", *words]))

    def _workdir(self, state: State, node: ir.Workdir, text: str, onbuild: bool) -> Step:
        wd = normalize_workdir(state.workdir, node.path)
        state.workdir = wd
        if wd == "/":
            return self._config_step(state, node, text, onbuild, f"WORKDIR {wd}")
        history = hist.entry(f"WORKDIR {wd}", layer=True)
        state.history.append(history)
        return WorkdirStep(
            span=node.span,
            text=text,
            onbuild=onbuild,
            history=history,
            path=paths.clean(wd),
            user=state.user,
        )

    def _proxy_env(self) -> tuple[tuple[str, str], ...]:
        """BuildKit's ProxyEnv: per kind the value of the build-arg matching it ignoring case
        (keys in sorted order, the last wins), as both the upper- and lower-case variable."""
        values: dict[str, str] = {}
        for key in sorted(self.build_args):
            kind = key.lower()
            if kind in PROXY_KINDS:
                values[kind] = self.build_args[key]
        out: list[tuple[str, str]] = []
        for kind in PROXY_KINDS:
            value = values.get(kind)
            if value:
                out.extend(((kind.upper(), value), (kind, value)))
        return tuple(out)

    def _run(
        self, state: State, info: StageInfo, node: ir.Run, text: str, onbuild: bool
    ) -> RunStep:
        args = node.command
        files: tuple[RunFile, ...] = ()
        if node.heredocs:
            if len(args) != 1 or not node.prepend_shell:
                raise InvalidInstructionError(
                    f"parsing produced an invalid run command: {hist.go_list(args)}"
                )
            try:
                marker = parse_marker(args[0])
            except HeredocSyntaxError:
                marker = None
            if marker is not None:
                first = node.heredocs[0]
                data = _LEADING_TABS.sub("", first.data) if first.chomp else first.data
                if state.image.os != "windows" and data.startswith("#!"):
                    path = paths.join(_PIPES_DIR, first.name)
                    files = (RunFile(path=path, data=data, mode=0o755),)
                    args = (path,)
                else:
                    args = (data,)
            else:
                args = (args[0] + "".join(f"\n{f.data}{f.name}" for f in node.heredocs),)
        if node.prepend_shell:
            args = state.with_shell(args)
        mounts = self._mounts(state, info, node)
        variables = state.vars
        cache_env = tuple(f"{k}={v}" for k, v in variables.items())
        extra = tuple(f"{k}={v}" for k, v in self.proxy_env if k not in variables)
        created_by = "RUN " + hist.run_command_string(args, state.build_args, variables)
        history = hist.entry(created_by, layer=True, suffix=True)
        state.history.append(history)
        return RunStep(
            span=node.span,
            text=text,
            onbuild=onbuild,
            history=history,
            args=args,
            env=cache_env + extra,
            cache_env=cache_env,
            user=state.user,
            workdir=state.workdir or "/",
            mounts=mounts,
            network=node.network.value,
            security=node.security.value,
            devices=node.devices,
            heredoc_files=files,
            hostname=self.hostname,
        )

    def _mount_source(self, info: StageInfo, mount: ir.Mount) -> Source:
        if mount.from_ is None:
            if mount.type is ir.MountType.CACHE:
                return FromScratch()
            return FromContext()
        ref = self._mount_from(mount.from_)
        if isinstance(ref, int):
            if ref >= info.stage.index:
                raise StageError(
                    f"cannot mount from stage {go_quote(mount.from_)} to "
                    f"{go_quote(mount.target or '')}, stage needs to be defined before "
                    "current command"
                )
            return FromStage(index=ref)
        if ref == EMPTY_IMAGE:
            return FromScratch()
        return FromImage(image=self._resolve(ref, self.request.platform, info.stage.span))

    def _mounts(self, state: State, info: StageInfo, node: ir.Run) -> tuple[RunMount, ...]:
        return plan_mounts(
            node.mounts, workdir=state.workdir, source_of=lambda m: self._mount_source(info, m)
        )

    def _copy(
        self,
        state: State,
        info: StageInfo,
        node: ir.Copy | ir.Add,
        text: str,
        onbuild: bool,
    ) -> CopyStep:
        is_add = isinstance(node, ir.Add)
        source: Source = FromContext()
        if isinstance(node, ir.Copy) and node.from_ is not None:
            ref = self._copy_from(node.from_, node.span)
            if isinstance(ref, int):
                if ref == info.stage.index:
                    raise StageError(f"circular dependency detected on stage: {info.stage_name}")
                if ref > info.stage.index:
                    raise StageError(
                        f"cannot copy from stage {go_quote(node.from_)}, it needs to be defined "
                        f"before current stage {go_quote(info.display_name)}"
                    )
                source = FromStage(index=ref)
            elif ref == EMPTY_IMAGE:
                source = FromScratch()
            else:
                source = FromImage(image=self._resolve(ref, self.request.platform, node.span))
        if node.chmod:
            check_chmod(node.chmod)
        sources = classify_sources(
            node.sources,
            is_add=is_add,
            checksum=node.checksum if isinstance(node, ir.Add) else None,
        )
        created_by = hist.copy_created_by(
            is_add=is_add,
            parents=isinstance(node, ir.Copy) and node.parents,
            chown=node.chown,
            chmod=node.chmod,
            sources=node.sources,
            inline_names=(h.path for h in node.heredocs),
            dest=node.dest,
        )
        history = hist.entry(created_by, layer=True, suffix=True)
        state.history.append(history)
        return CopyStep(
            span=node.span,
            text=text,
            onbuild=onbuild,
            history=history,
            is_add=is_add,
            sources=sources,
            inline_files=tuple(InlineFile(name=h.path, data=h.data) for h in node.heredocs),
            dest=node.dest,
            workdir=state.workdir or "/",
            source=source,
            chown=node.chown,
            chmod=node.chmod,
            link=node.link,
            parents=isinstance(node, ir.Copy) and node.parents,
            excludes=node.exclude,
            unpack=node.unpack if isinstance(node, ir.Add) else None,
            keep_git_dir=node.keep_git_dir if isinstance(node, ir.Add) else None,
        )

    # ----------------------------------------------------------------- warnings

    def _warnings(self) -> tuple[Diagnostic, ...]:
        unused = sorted(
            key
            for key in self.build_args
            if key not in self.consumed
            and key not in BUILTIN_ARGS
            and key not in PLATFORM_ARGS
            and key.lower() not in PROXY_KINDS
        )
        if not unused:
            return ()
        return (
            Diagnostic(
                level=Level.WARNING,
                rule="UnusedBuildArgs",
                message=f"One or more build-args {hist.go_list(unused)} were not consumed",
            ),
        )


__all__ = [
    "BUILTIN_ARGS",
    "DEFAULT_PATH",
    "PLATFORM_ARGS",
    "PROXY_ARGS",
    "plan",
]
