"""Rules about FROM's base name and ``--platform``, decided with the global ARGs.

BuildKit's ``buildDispatchStates`` and ``validateBaseImagesWithDefaultArgs``: UndefinedArgInFrom,
RedundantTargetPlatform, FromPlatformFlagConstDisallowed and InvalidDefaultArgInFrom.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from builder.errors import BuildError, Diagnostic
from builder.lint import rules
from builder.lint.facts import Facts, Item
from builder.lint.inputs import LintInputs
from builder.oci.types import Platform
from builder.reference import parse_normalized
from builder.syntax import ir
from builder.syntax.expand import Lexer, WordResult
from builder.syntax.flags import suggest


def platform_args(inputs: LintInputs, last_stage: str | None) -> dict[str, str]:
    """BuildKit's ``defaultArgs``: the automatic platform ARGs, overridable by build args."""
    bp, tp = inputs.build_platform, inputs.target_platform
    defaults = {
        "BUILDPLATFORM": str(bp),
        "BUILDOS": bp.os,
        "BUILDOSVERSION": bp.os_version,
        "BUILDARCH": bp.architecture,
        "BUILDVARIANT": bp.variant,
        "TARGETPLATFORM": str(tp),
        "TARGETOS": tp.os,
        "TARGETOSVERSION": tp.os_version,
        "TARGETARCH": tp.architecture,
        "TARGETVARIANT": tp.variant,
        "TARGETSTAGE": inputs.target or last_stage or "default",
    }
    return {key: inputs.build_args.get(key, value) for key, value in defaults.items()}


def meta_args(
    facts: Facts, lexer: Lexer, env: Mapping[str, str], build_args: Mapping[str, str]
) -> dict[str, str] | None:
    """BuildKit's ``buildMetaArgs``: ``env`` plus the global ARGs; ``None`` if one fails."""
    out = dict(env)
    for item in facts.items:
        if item.stage >= 0 or not isinstance(item.instr, ir.Arg):
            continue
        for decl in item.instr.args:
            if decl.key in build_args:
                value: str | None = build_args[decl.key]
            elif decl.default is not None:
                try:
                    value = lexer.process_word(decl.default, out)
                except BuildError:
                    return None
            else:
                value = None
            if value is not None:
                out.pop(decl.key, None)
                out[decl.key] = value
    return out


def global_arg_keys(facts: Facts) -> set[str]:
    return {
        decl.key
        for item in facts.items
        if item.stage < 0 and isinstance(item.instr, ir.Arg)
        for decl in item.instr.args
    }


def _expand(lexer: Lexer, word: str, env: Mapping[str, str]) -> WordResult | None:
    try:
        return lexer.process_word_with_matches(word, env)
    except BuildError:
        return None


def _undeclared(
    item: Item, match: WordResult, keys: set[str], options: list[str]
) -> Iterator[Diagnostic]:
    for name in sorted(match.unmatched - keys):
        guess = suggest(name, options, case_sensitive=True)
        message = f"FROM argument '{name}' is not declared"
        if guess is not None:
            message += f" (did you mean {guess}?)"
        yield rules.UNDEFINED_ARG_IN_FROM.finding(message, item.where.whole())


def check(facts: Facts) -> Iterator[Diagnostic]:
    dockerfile = facts.dockerfile
    if dockerfile is None:
        return
    lexer = Lexer(escape=dockerfile.escape)
    last = dockerfile.stages[-1].name if dockerfile.stages else None
    defaults = platform_args(facts.inputs, last)
    env = meta_args(facts, lexer, defaults, facts.inputs.build_args)
    if env is None:
        return
    keys = global_arg_keys(facts) | set(env)
    options = sorted(keys)
    default_env = meta_args(facts, lexer, defaults, {})
    for item in facts.items:
        instr = item.instr
        if not isinstance(instr, ir.From):
            continue
        name = _expand(lexer, instr.base, env)
        if name is not None:
            yield from _undeclared(item, name, keys, options)
        if instr.platform:
            plat = _expand(lexer, instr.platform, env)
            if plat is not None:
                yield from _undeclared(item, plat, keys, options)
                yield from _redundant_platform(item, instr.platform, plat, env)
                yield from _const_platform(item, instr.stage_name or "", plat)
        if default_env is not None:
            yield from _invalid_default(item, instr.base, lexer, default_env)


def _redundant_platform(
    item: Item, raw: str, match: WordResult, env: Mapping[str, str]
) -> Iterator[Diagnostic]:
    if (
        match.matched == {"TARGETPLATFORM"}
        and not match.unmatched
        and match.result == env.get("TARGETPLATFORM")
    ):
        yield rules.REDUNDANT_TARGET_PLATFORM.finding(
            f"Setting platform to predefined {raw} in FROM is redundant as this is the "
            "default behavior",
            item.where.whole(),
        )


def _const_platform(item: Item, stage_name: str, match: WordResult) -> Iterator[Diagnostic]:
    if match.matched or match.unmatched:
        return
    try:
        platform = Platform.parse(match.result)
    except BuildError:
        return
    if platform.os in stage_name or platform.architecture in stage_name:
        return
    yield rules.FROM_PLATFORM_FLAG_CONST_DISALLOWED.finding(
        f'FROM --platform flag should not use constant value "{match.result}"',
        item.where.whole(),
    )


def _invalid_default(
    item: Item, base: str, lexer: Lexer, env: Mapping[str, str]
) -> Iterator[Diagnostic]:
    try:
        name = lexer.process_word(base, env)
    except BuildError:
        return
    try:
        parse_normalized(name)
    except BuildError:
        yield rules.INVALID_DEFAULT_ARG_IN_FROM.finding(
            f"Default value for ARG {base} results in empty or invalid base image name",
            item.where.whole(),
        )
