"""The canonical formatter: every instruction kind, awkward values, comments, escape characters."""

from __future__ import annotations

from dataclasses import replace

import pytest

from builder.errors import BuildError, DockerfileError, InvalidInstructionError, Span
from builder.syntax import ir
from builder.syntax.expand import Lexer
from builder.syntax.format import (
    device_spec,
    flag_value,
    format_dockerfile,
    format_instruction,
    format_text,
    json_array,
    normalize,
)
from builder.syntax.mounts import parse_device
from builder.syntax.parser import parse
from builder.syntax.transform import to_ir
from builder.units import format_duration


def fmt(text: str) -> str:
    return format_text(text, path="Dockerfile")


def ir_of(text: str) -> ir.Dockerfile:
    return to_ir(parse(text, path="Dockerfile"))


def body(text: str) -> str:
    """The formatted instructions after ``FROM scratch``."""
    out = fmt("FROM scratch\n" + text)
    assert out.startswith("FROM scratch\n")
    return out.removeprefix("FROM scratch\n")


def same_meaning(text: str) -> ir.Dockerfile:
    """Format ``text``; assert the result parses to the same IR and is a fixed point."""
    out = fmt(text)
    assert normalize(ir_of(out)) == normalize(ir_of(text))
    assert fmt(out) == out
    return ir_of(out)


def first(df: ir.Dockerfile) -> ir.Instruction:
    return df.stages[0].instructions[0]


def kept_run(text: str) -> ir.Run:
    """Assert the RUN in ``text`` is written back exactly and means the same; its IR."""
    assert body(text) == text
    run = first(same_meaning("FROM scratch\n" + text))
    assert isinstance(run, ir.Run)
    return run


# --------------------------------------------------------------------------- FROM


def test_from_keywords_upper_case_and_stage_name_lower_case() -> None:
    assert fmt("from alpine:3 as Build\n") == "FROM alpine:3 AS build\n"


def test_from_platform_flag() -> None:
    out = fmt("FROM   --platform=$BUILDPLATFORM   golang:1.22   AS b\n")
    assert out == "FROM --platform=$BUILDPLATFORM golang:1.22 AS b\n"


def test_flag_value_with_blank_and_quotes_is_quoted() -> None:
    out = fmt("FROM --platform='linux/amd64 \"x\"' alpine\n")
    assert out == 'FROM --platform="linux/amd64 \\"x\\"" alpine\n'
    assert ir_of(out).stages[0].platform == 'linux/amd64 "x"'


def test_flag_values_keep_non_ascii_text() -> None:
    out = body("COPY --chown=élève --from=日本 a b\n")
    assert out == "COPY --from=日本 --chown=élève a b\n"
    same_meaning("FROM scratch\n" + out)


def test_base_starting_with_dashes_gets_a_separator() -> None:
    df = ir_of("FROM -- --odd\n")
    assert df.stages[0].base == "--odd"
    assert fmt("FROM -- --odd\n") == "FROM -- --odd\n"


# --------------------------------------------------------------------------- RUN


def test_run_flags_in_canonical_order() -> None:
    text = (
        "run --device=/dev/fuse --security=insecure --network=none "
        "--mount=type=cache,target=/c make\n"
    )
    assert body(text) == (
        "RUN --mount=type=cache,target=/c --network=none --security=insecure "
        "--device=/dev/fuse make\n"
    )


def test_run_explicit_default_flag_is_kept() -> None:
    assert body("RUN --network=default true\n") == "RUN --network=default true\n"


def test_run_mount_spec_with_blank_and_csv_quotes() -> None:
    text = 'RUN --mount="type=bind,\\"target=/a b,c\\"" ls\n'
    out = body(text)
    assert out == 'RUN --mount="type=bind,\\"target=/a b,c\\"" ls\n'
    run = first(same_meaning("FROM scratch\n" + out))
    assert isinstance(run, ir.Run)
    assert run.mounts[0].target == "/a b,c"


def test_run_exec_form_json_escaping() -> None:
    text = 'RUN ["echo", "a\\"b", "back\\\\slash", "tab\\t", "\\u00e9", "\\u2028", "\\u0000", ""]\n'
    out = body(text)
    assert out == (
        'RUN ["echo", "a\\"b", "back\\\\slash", "tab\\t", "é", "\\u2028", "\\u0000", ""]\n'
    )
    run = first(same_meaning("FROM scratch\n" + out))
    assert isinstance(run, ir.Run)
    assert run.command == ("echo", 'a"b', "back\\slash", "tab\t", "é", "\u2028", "\x00", "")


def test_run_exec_form_compact_spacing() -> None:
    assert body('RUN [ "a" ,"b"]\n') == 'RUN ["a", "b"]\n'
    assert body("RUN []\n") == "RUN []\n"


def test_run_command_starting_with_dashes() -> None:
    out = body("RUN -- --version\n")
    assert out == "RUN -- --version\n"
    assert first(ir_of("FROM scratch\n" + out)) == first(ir_of("FROM scratch\nRUN -- --version\n"))


def test_run_shell_text_kept_as_written() -> None:
    text = "RUN echo \"$HOME\" 'it''s' `date` | tee >(cat) && [ -f x ] || exit 1\n"
    assert body(text) == text


def test_run_continuation_lines_keep_their_layout() -> None:
    text = "RUN apt-get update \\\n    && apt-get install -y \\\n        curl \\\n        git\n"
    assert body(text) == text
    same_meaning("FROM scratch\n" + text)


def test_run_continuation_without_indentation_is_kept() -> None:
    run = kept_run("RUN echo a&&\\\necho b\n")
    assert (run.command, run.breaks) == (("echo a&&echo b",), (8,))


def test_run_on_one_line_stays_on_one_line_with_its_blank_runs() -> None:
    run = kept_run("RUN echo a  b\n")
    assert (run.command, run.breaks) == (("echo a  b",), ())
    assert body("RUN echo a \t  b  &&   ls\t\t-l\n") == "RUN echo a \t  b  &&   ls\t\t-l\n"


@pytest.mark.parametrize(
    "text",
    [
        "CMD echo a  b\n",
        "ENTRYPOINT exec  top   -b\n",
        "HEALTHCHECK --interval=5s CMD curl  -f   http://x/\n",
        "ONBUILD RUN make  all\n",
    ],
)
def test_other_shell_forms_on_one_line_stay_on_one_line(text: str) -> None:
    assert body(text) == text
    same_meaning("FROM scratch\n" + text)


def test_continued_run_keeps_exactly_its_breaks() -> None:
    run = kept_run("RUN a  b \\\n    c  d\\\n  e \\\n\tf\n")
    assert run.command == ("a  b     c  d  e \tf",)
    assert run.breaks == (5, 13, 17)


def test_continued_shell_forms_keep_their_breaks_after_canonical_prefixes() -> None:
    # the keyword, flags and blanks before the command are canonical; the command is as written
    text = (
        "onbuild   run  echo a \\\n  b\n"
        "healthcheck   --retries=3 cmd  check \\\n  --x  y\n"
        "cmd \\\n  start \\\n    --now\n"
    )
    out = body(text)
    assert out == (
        "ONBUILD RUN echo a \\\n  b\n"
        "HEALTHCHECK --retries=3 CMD check \\\n  --x  y\n"
        "CMD start \\\n    --now\n"
    )
    same_meaning("FROM scratch\n" + text)


def test_run_with_long_flags_and_a_continued_command() -> None:
    flags = "--mount=type=cache,target=/root/.cache/pip --mount=type=bind,source=req.txt,target=/r"
    out = body(f"RUN {flags} pip install \\\n    -r /r\n")
    assert out == (
        "RUN --mount=type=cache,target=/root/.cache/pip \\\n"
        "    --mount=type=bind,source=req.txt,target=/r \\\n"
        "    pip install \\\n"
        "    -r /r\n"
    )
    assert fmt("FROM scratch\n" + out) == "FROM scratch\n" + out


def test_run_blank_runs_inside_quotes_stay_on_the_line() -> None:
    assert body("RUN echo 'a    b' \"c    d\"\n") == "RUN echo 'a    b' \"c    d\"\n"


def test_run_break_inside_quotes_is_kept() -> None:
    text = "RUN echo 'a \\\n  b' \"c\\\nd\"\n"
    assert body(text) == text
    same_meaning("FROM scratch\n" + text)


def test_run_comment_inside_continuation_moves_before_the_instruction() -> None:
    text = "FROM scratch\nRUN a \\\n# inside\n    && b\n"
    assert fmt(text) == "FROM scratch\n# inside\nRUN a \\\n    && b\n"


def test_run_break_never_starts_a_line_with_hash() -> None:
    out = body("RUN echo a   #not-a-comment\n")
    assert out == "RUN echo a   #not-a-comment\n"


def test_run_with_long_flags_wraps_one_flag_per_line() -> None:
    text = (
        "RUN --mount=type=cache,target=/root/.cache/pip --mount=type=bind,source=req.txt,"
        "target=/r.txt pip install -r /r.txt\n"
    )
    assert body(text) == (
        "RUN --mount=type=cache,target=/root/.cache/pip \\\n"
        "    --mount=type=bind,source=req.txt,target=/r.txt \\\n"
        "    pip install -r /r.txt\n"
    )
    same_meaning("FROM scratch\n" + text)


def test_run_heredoc_bodies_and_terminators() -> None:
    text = "RUN <<EOF\nset -e\necho $HOME\nEOF\n"
    assert body(text) == text
    run = first(same_meaning("FROM scratch\n" + text))
    assert isinstance(run, ir.Run)
    assert run.heredocs == (ir.InlineFile(name="EOF", data="set -e\necho $HOME\n"),)


def test_run_heredoc_markers_keep_quotes_and_chomp() -> None:
    text = "run cat <<-'A' <<\"B\" > /x\n\tone\n\tA\ntwo\nB\n"
    out = body(text)
    assert out == "RUN cat <<-'A' <<\"B\" > /x\n\tone\nA\ntwo\nB\n"
    run = first(same_meaning("FROM scratch\n" + out))
    assert isinstance(run, ir.Run)
    assert [(f.name, f.data, f.chomp) for f in run.heredocs] == [
        ("A", "\tone\n", True),
        ("B", "two\n", False),
    ]


def test_run_lone_escape_at_the_end_is_kept_with_a_vertical_tab() -> None:
    text = "FROM scratch\nRUN echo \\\u00a0\n"
    assert first(ir_of(text)) == first(ir_of(text))
    out = fmt(text)
    assert out == "FROM scratch\nRUN echo \\\v\n"
    run = first(same_meaning(text))
    assert isinstance(run, ir.Run)
    assert run.command == ("echo \\",)


# --------------------------------------------------------------------------- CMD, ENTRYPOINT, SHELL


def test_cmd_and_entrypoint_forms() -> None:
    text = 'cmd echo hi\nentrypoint ["/bin/sh","-c"]\nCMD\nCMD []\nCMD [ -f x ] && y\n'
    assert body(text) == (
        'CMD echo hi\nENTRYPOINT ["/bin/sh", "-c"]\nCMD\nCMD []\nCMD [ -f x ] && y\n'
    )
    same_meaning("FROM scratch\n" + text)


def test_cmd_heredoc_lookalike_is_plain_text() -> None:
    assert body("CMD cat <<EOF\n") == "CMD cat <<EOF\n"


def test_shell_is_json() -> None:
    assert body('shell ["/bin/bash","-o","pipefail","-c"]\n') == (
        'SHELL ["/bin/bash", "-o", "pipefail", "-c"]\n'
    )


# --------------------------------------------------------------------------- COPY and ADD


def test_copy_flags_in_canonical_order() -> None:
    text = "COPY --exclude=*.md --link --chmod=755 --parents --chown=1:1 --from=build /a /b/\n"
    assert body(text) == (
        "COPY --from=build --chown=1:1 --chmod=755 --link --parents --exclude=*.md /a /b/\n"
    )


def test_add_flags_in_canonical_order() -> None:
    text = (
        "ADD --unpack=false --checksum=sha256:abc --keep-git-dir --link=false "
        "--exclude= https://x/y.tar /z\n"
    )
    assert body(text) == (
        "ADD --keep-git-dir --checksum=sha256:abc --unpack=false --exclude= https://x/y.tar /z\n"
    )
    add = first(same_meaning("FROM scratch\n" + text))
    assert isinstance(add, ir.Add)
    assert (add.keep_git_dir, add.unpack, add.exclude) == (True, False, ("",))


def test_copy_json_only_when_needed() -> None:
    assert body('COPY ["a", "b/"]\n') == "COPY a b/\n"
    assert body('COPY ["a b", "c\\u00a0d", "/e f/"]\n') == 'COPY ["a b", "c\\u00a0d", "/e f/"]\n'
    assert body('COPY ["[x]", "y"]\n') == "COPY [x] y\n"
    # the two paths joined by a blank would read as a JSON array
    assert body('COPY ["[\\"a\\",", "\\"b\\"]"]\n') == 'COPY ["[\\"a\\",", "\\"b\\"]"]\n'
    assert body("COPY [x y\n") == "COPY [x y\n"


def test_copy_heredocs_keep_expand_flag() -> None:
    text = "COPY <<A <<'B' /dst/\n$x\nA\n$y\nB\n"
    out = body(text)
    assert out == 'COPY <<A <<"B" /dst/\n$x\nA\n$y\nB\n'
    copy = first(same_meaning("FROM scratch\n" + text))
    assert isinstance(copy, ir.Copy)
    assert [(h.path, h.data, h.expand) for h in copy.heredocs] == [
        ("A", "$x\n", True),
        ("B", "$y\n", False),
    ]


def test_copy_chomped_heredoc_is_written_with_tabs_removed() -> None:
    out = body("COPY src <<-EOF /dst\n\t\tline\n\tEOF\n")
    assert out == "COPY src <<EOF /dst\nline\nEOF\n"


def test_copy_heredoc_marker_hidden_by_an_open_quote_has_no_body() -> None:
    text = 'COPY "\t<<EOF a\n'
    copy = first(ir_of("FROM scratch\n" + text))
    assert isinstance(copy, ir.Copy)
    assert (copy.sources, copy.heredocs) == (('"',), (ir.InlineSource(path="EOF", data=""),))
    assert body(text) == 'COPY " <<EOF a\n'
    same_meaning("FROM scratch\n" + text)


def test_copy_heredoc_in_json_form_is_an_empty_file() -> None:
    text = 'COPY ["<<A", "d"]\n'
    assert body(text) == "COPY <<A d\nA\n"
    same_meaning("FROM scratch\n" + text)


def test_copy_marker_first_when_the_paths_would_read_as_json() -> None:
    text = 'COPY <<B ["x y"]\nbody\nB\n'
    assert body(text) == text
    same_meaning("FROM scratch\n" + text)


def test_copy_empty_heredoc() -> None:
    assert body("COPY <<EOF /x\nEOF\n") == "COPY <<EOF /x\nEOF\n"


# --------------------------------------------------------------------------- ENV, LABEL, ARG


def expansion(word: str, env: dict[str, str], escape: str = "\\") -> str:
    return Lexer(escape=escape).process_word(word, env)


ENV = {"HOME": "/root", "a": "A", "x": "1 2"}


@pytest.mark.parametrize(
    ("source", "written", "value"),
    [
        ("ENV a b", "ENV a=b", "b"),
        ("ENV a b c", 'ENV a="b c"', "b c"),
        ("ENV a  b   c ", 'ENV a="b   c"', "b   c"),
        ("ENV a $HOME/x y", 'ENV a="$HOME/x y"', "/root/x y"),
        ("ENV a ${x:-d e} f", 'ENV a="${x:-d e} f"', "1 2 f"),
        ("ENV a ${b#x y} z", 'ENV a="${b#x y} z"', " z"),
        ("ENV a 'b c' \"d\"", 'ENV a=\'b c\'" ""d"', "b c d"),
        ("ENV a it\\'s a \\$x", 'ENV a=it\\\'s" "a" "\\$x', "it's a $x"),
        ("ENV a é 日本\u3000x", 'ENV a="é 日本\u3000x"', "é 日本\u3000x"),
        ("ENV a b\u00a0c", 'ENV a="b\u00a0c"', "b\u00a0c"),
        ("ENV a\u00a0z b", 'ENV a"\u00a0"z=b', "b"),
    ],
)
def test_legacy_env_becomes_key_value(source: str, written: str, value: str) -> None:
    df = ir_of("FROM scratch\n" + source + "\n")
    out = fmt("FROM scratch\n" + source + "\n")
    assert out == "FROM scratch\n" + written + "\n"
    old = first(df)
    new = first(same_meaning(out))
    assert isinstance(old, ir.Env)
    assert isinstance(new, ir.Env)
    assert not new.pairs[0].legacy
    assert expansion(new.pairs[0].key, ENV) == expansion(old.pairs[0].key, ENV)
    assert expansion(new.pairs[0].value, ENV) == expansion(old.pairs[0].value, ENV) == value


def test_legacy_env_key_runs_to_the_first_ascii_blank() -> None:
    old = first(ir_of("FROM scratch\nENV a\u00a0z b\n"))
    assert isinstance(old, ir.Env)
    assert old.pairs[0].key == "a\u00a0z"
    new = first(ir_of(fmt("FROM scratch\nENV a\u00a0z b\n")))
    assert isinstance(new, ir.Env)
    assert new.pairs[0].key == 'a"\u00a0"z'


def test_env_words_are_written_as_they_are() -> None:
    text = 'ENV a=1 b="x y" c=\'$d\' e=\\$f g= h=$HOME\\ i "j k"=l\n'
    assert body(text) == text
    env = first(same_meaning("FROM scratch\n" + text))
    assert isinstance(env, ir.Env)
    assert [(p.key, p.value) for p in env.pairs] == [
        ("a", "1"),
        ("b", '"x y"'),
        ("c", "'$d'"),
        ("e", "\\$f"),
        ("g", ""),
        ("h", "$HOME\\ i"),
        ('"j k"', "l"),
    ]


def test_env_pairs_on_continuation_lines_join() -> None:
    assert body("ENV a=1 \\\n    b=2\n") == "ENV a=1 b=2\n"


def test_long_label_wraps_one_pair_per_line() -> None:
    text = (
        'LABEL org.opencontainers.image.title="pybuild" org.opencontainers.image.source='
        '"https://example.com/pybuild" org.opencontainers.image.licenses="MIT"\n'
    )
    assert body(text) == (
        'LABEL org.opencontainers.image.title="pybuild" \\\n'
        '    org.opencontainers.image.source="https://example.com/pybuild" \\\n'
        '    org.opencontainers.image.licenses="MIT"\n'
    )
    same_meaning("FROM scratch\n" + text)


def test_legacy_label_with_quoted_value_is_already_one_word() -> None:
    text = 'label maintainer "Jane Doe <jane@example.com>"\n'
    assert body(text) == 'LABEL maintainer="Jane Doe <jane@example.com>"\n'


def test_env_key_starting_with_dashes() -> None:
    assert body("ENV -- --k=v\n") == "ENV -- --k=v\n"


def test_arg_forms() -> None:
    text = 'arg a b=2 c="x y" d=\n'
    assert body(text) == 'ARG a b=2 c="x y" d=\n'
    same_meaning("FROM scratch\n" + text)


# --------------------------------------------------------------------------- the rest


def test_expose_sorted_ports() -> None:
    assert body("expose 80/tcp   443 8080/udp\n") == "EXPOSE 443 80/tcp 8080/udp\n"


def test_expose_keeps_unicode_blanks_off_the_ends_of_the_line() -> None:
    text = "FROM a\nEXPOSE z \u00a0 \u00a0y y\u00a0 b\n"
    expose = first(ir_of(text))
    assert isinstance(expose, ir.Expose)
    assert expose.ports == ("b", "y\u00a0", "z", "\u00a0", "\u00a0y")
    assert fmt(text) == "FROM a\nEXPOSE b y\u00a0 z \u00a0 \u00a0y\n"
    same_meaning(text)
    text = "FROM a\nEXPOSE b \u00a0a\n"  # sorted, the port with a leading U+00A0 comes first
    assert fmt(text) == "FROM a\nEXPOSE b \u00a0a\n"
    same_meaning(text)


def test_volume_forms() -> None:
    assert body('VOLUME ["/data", "/logs"]\n') == "VOLUME /data /logs\n"
    assert body('VOLUME ["/my data"]\n') == 'VOLUME ["/my data"]\n'
    assert body("volume /a   /b\n") == "VOLUME /a /b\n"


def test_single_string_instructions() -> None:
    text = "user app:app\nworkdir /src/my dir\nstopsignal SIGTERM\nmaintainer Jane <j@x>\n"
    assert body(text) == (
        "USER app:app\nWORKDIR /src/my dir\nSTOPSIGNAL SIGTERM\nMAINTAINER Jane <j@x>\n"
    )
    same_meaning("FROM scratch\n" + text)


def test_healthcheck_forms() -> None:
    text = (
        "HEALTHCHECK --retries=3 --start-period=1500ms --interval=90s --timeout=1h "
        "CMD curl -f http://x/\n"
        "healthcheck none\n"
        'HEALTHCHECK --interval=5s CMD ["/bin/check", "-q"]\n'
    )
    assert body(text) == (
        "HEALTHCHECK --interval=1m30s --timeout=1h0m0s --start-period=1.5s --retries=3 "
        "CMD curl -f http://x/\n"
        "HEALTHCHECK NONE\n"
        'HEALTHCHECK --interval=5s CMD ["/bin/check", "-q"]\n'
    )
    same_meaning("FROM scratch\n" + text)


def test_onbuild_formats_its_trigger() -> None:
    text = "onbuild  run  --network=none echo hi\nONBUILD copy  a b\nONBUILD ENV k v w\n"
    assert body(text) == (
        'ONBUILD RUN --network=none echo hi\nONBUILD COPY a b\nONBUILD ENV k="v w"\n'
    )
    same_meaning("FROM scratch\n" + text)


def test_onbuild_with_heredoc_trigger() -> None:
    text = "ONBUILD RUN <<EOF\necho hi\nEOF\n"
    assert body(text) == text
    onbuild = first(same_meaning("FROM scratch\n" + text))
    assert isinstance(onbuild, ir.OnBuild)
    assert isinstance(onbuild.trigger, ir.Run)
    assert onbuild.trigger.heredocs[0].data == "echo hi\n"


def test_onbuild_trigger_that_fails_is_kept_verbatim() -> None:
    text = "ONBUILD bogus   x  y\nONBUILD COPY onlyone\n"
    assert body(text) == text
    onbuild = first(same_meaning("FROM scratch\n" + text))
    assert isinstance(onbuild, ir.OnBuild)
    assert onbuild.trigger is None
    assert onbuild.expression == "bogus   x  y"


def test_onbuild_trigger_ending_in_an_escape_stays_at_the_end_of_the_file() -> None:
    text = "FROM a\nONBUILD COPY \\ \\\n# after\n"
    onbuild = first(ir_of(text))
    assert isinstance(onbuild, ir.OnBuild)
    assert onbuild.expression == "COPY \\ "
    assert fmt(text) == "FROM a\n# after\nONBUILD COPY \\ \\\n"
    same_meaning(text)
    with pytest.raises(InvalidInstructionError, match="only possible at the end"):
        format_instruction(onbuild)


# --------------------------------------------------------------------------- file layout


def test_global_args_first_and_blank_line_between_stages() -> None:
    text = "ARG V=1\nARG B\nFROM a:$V AS one\nRUN x\nFROM b\nCOPY --from=one / /\n"
    assert fmt(text) == (
        "ARG V=1\nARG B\n\nFROM a:$V AS one\nRUN x\n\nFROM b\nCOPY --from=one / /\n"
    )


def test_blank_lines_are_canonical() -> None:
    assert fmt("\n\nFROM a\n\n\nRUN x\n\n") == "FROM a\nRUN x\n"


def test_directives_first_then_a_blank_line() -> None:
    text = "# syntax=docker/dockerfile:1\n#check = skip=all\nFROM a\n"
    assert fmt(text) == "# syntax=docker/dockerfile:1\n# check=skip=all\n\nFROM a\n"


def test_comment_that_looks_like_a_directive_stays_a_comment() -> None:
    text = "\n# syntax=not-a-directive\nFROM a\n"
    out = fmt(text)
    assert out == "\n# syntax=not-a-directive\nFROM a\n"
    assert parse(out).directives == ()
    assert [c.text for c in parse(out).comments] == ["syntax=not-a-directive"]


def test_comments_before_their_instruction_and_at_the_end() -> None:
    text = (
        "#top\n"
        "FROM a\n"
        "   #  indented comment  \n"
        "RUN x \\\n"
        "  # inside a continuation\n"
        "  && y\n"
        "#\n"
        "\n"
        "FROM b\n"
        "# after the last instruction\n"
        "# and another\n"
    )
    assert fmt(text) == (
        "# top\n"
        "FROM a\n"
        "# indented comment\n"
        "# inside a continuation\n"
        "RUN x \\\n"
        "  && y\n"
        "\n"
        "#\n"
        "FROM b\n"
        "# after the last instruction\n"
        "# and another\n"
    )


def test_comments_after_heredoc_bodies() -> None:
    text = "FROM a\nRUN <<EOF\n# not a comment\nEOF\n# a comment\nRUN y\n"
    assert fmt(text) == text
    assert [c.text for c in parse(text).comments] == ["a comment"]


def test_backtick_escape_file() -> None:
    text = (
        "# escape=`\n"
        "FROM mcr.microsoft.com/windows/servercore\n"
        "RUN powershell -Command `\n"
        "    $ErrorActionPreference = 'Stop'; `\n"
        "    Write-Host C:\\Windows\\Temp\n"
        'COPY --chown="a b`" c" x C:\\dest\\\n'
        "ENV P C:\\Program Files\\x\n"
    )
    out = fmt(text)
    assert out == (
        "# escape=`\n"
        "\n"
        "FROM mcr.microsoft.com/windows/servercore\n"
        "RUN powershell -Command `\n"
        "    $ErrorActionPreference = 'Stop'; `\n"
        "    Write-Host C:\\Windows\\Temp\n"
        'COPY --chown="a b`" c" x C:\\dest\\\n'
        'ENV P="C:\\Program Files\\x"\n'
    )
    df = same_meaning(text)
    assert df.escape == "`"
    copy = df.stages[0].instructions[1]
    assert isinstance(copy, ir.Copy)
    assert copy.chown == 'a b" c'
    env = df.stages[0].instructions[2]
    assert isinstance(env, ir.Env)
    assert expansion(env.pairs[0].value, {}, "`") == "C:\\Program Files\\x"


def test_backtick_file_gets_its_directive_even_when_not_given() -> None:
    df = ir_of("# escape=`\nFROM a\nRUN x `\n    y\n")
    assert format_dockerfile(df, directives=()) == "# escape=`\n\nFROM a\nRUN x `\n    y\n"


def test_crlf_and_bom_input() -> None:
    text = "\ufeffFROM a\r\nRUN x \\\r\n    y\r\n"
    assert fmt(text) == "FROM a\nRUN x \\\n    y\n"


def test_non_utf8_bytes_survive() -> None:
    text = b"FROM a\nRUN echo \xff\xfe\n".decode("utf-8", "surrogateescape")
    out = fmt(text)
    assert out.encode("utf-8", "surrogateescape") == b"FROM a\nRUN echo \xff\xfe\n"


def test_format_is_a_fixed_point_on_a_messy_file() -> None:
    text = (
        "# syntax=docker/dockerfile:1.7\n"
        "arg  GO=1.22\n"
        "from golang:${GO} as build\n"
        "workdir /src\n"
        "copy --link go.* ./\n"
        "run --mount=type=cache,target=/go/pkg/mod go mod download\n"
        "env CGO_ENABLED 0\n"
        "run go build -o /out/app . && \\\n"
        "\tstrip /out/app\n"
        "from scratch\n"
        "copy --from=build /out/app /app\n"
        'entrypoint ["/app"]\n'
    )
    out = fmt(text)
    assert fmt(out) == out
    assert out == (
        "# syntax=docker/dockerfile:1.7\n"
        "\n"
        "ARG GO=1.22\n"
        "\n"
        "FROM golang:${GO} AS build\n"
        "WORKDIR /src\n"
        "COPY --link go.* ./\n"
        "RUN --mount=type=cache,target=/go/pkg/mod go mod download\n"
        "ENV CGO_ENABLED=0\n"
        "RUN go build -o /out/app . && \\\n"
        "\tstrip /out/app\n"
        "\n"
        "FROM scratch\n"
        "COPY --from=build /out/app /app\n"
        'ENTRYPOINT ["/app"]\n'
    )


# --------------------------------------------------------------------------- pieces


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (1_000_000, "1ms"),
        (1_500_000, "1.5ms"),
        (1_000_000_000, "1s"),
        (90_000_000_000, "1m30s"),
        (3_600_000_000_000, "1h0m0s"),
        (3_723_000_000_001, "1h2m3.000000001s"),
        (2**63 - 1, "2562047h47m16.854775807s"),
        (-1_500_000_000, "-1.5s"),
    ],
)
def test_durations_like_go(nanos: int, text: str) -> None:
    assert format_duration(nanos) == text


@pytest.mark.parametrize(
    ("device", "spec"),
    [
        (ir.Device(name="/dev/fuse"), "/dev/fuse"),
        (ir.Device(name="/dev/fuse", required=True), "/dev/fuse,required"),
        (ir.Device(name="a=b"), "name=a=b"),
        (ir.Device(name="a,b"), '"name=a,b"'),
        (ir.Device(name='q"x'), '"name=q""x"'),
        (ir.Device(name="Required"), "name=Required"),
        (ir.Device(name="", required=True), "required"),
        (ir.Device(name=""), "name="),
    ],
)
def test_device_specs_parse_back(device: ir.Device, spec: str) -> None:
    assert device_spec(device) == spec
    assert parse_device(spec) == device


def test_flag_value_quoting() -> None:
    assert flag_value("plain", "\\") == "plain"
    assert flag_value("", "\\") == ""
    assert flag_value("a b", "\\") == '"a b"'
    assert flag_value('a\\"b', "\\") == '"a\\\\\\"b"'
    assert flag_value("a`b", "`") == '"a``b"'
    assert flag_value("\xc3\xa9", "\\") == "é"  # the byte view of é
    assert flag_value("\xc3\xa0", "\\") == '"à"'  # its second byte is a blank (0xA0) to BuildKit


def test_json_array_text() -> None:
    assert json_array(()) == "[]"
    assert json_array(("a", "b c")) == '["a", "b c"]'
    assert (
        json_array(("\x7f\u00a0\ufeff🙂\U000e0001",)) == '["\\u007f\\u00a0\\ufeff🙂\\udb40\\udc01"]'
    )


# --------------------------------------------------------------------------- IR no text expresses


RUN = ir.Run(
    span=Span(file="Dockerfile", line=7),
    keyword="RUN",
    original="",
    command=("cat",),
    prepend_shell=True,
)


def test_run_heredoc_without_marker_is_refused() -> None:
    run = replace(RUN, heredocs=(ir.InlineFile(name="EOF", data="x\n"),))
    with pytest.raises(InvalidInstructionError, match="cannot format RUN: its heredocs") as info:
        format_instruction(run)
    assert info.value.span == Span(file="Dockerfile", line=7)


def test_run_heredoc_holding_its_terminator_is_refused() -> None:
    run = replace(RUN, command=("cat <<EOF",), heredocs=(ir.InlineFile(name="EOF", data="EOF\n"),))
    with pytest.raises(InvalidInstructionError, match="holds its own terminator"):
        format_instruction(run)


@pytest.mark.parametrize(
    ("command", "breaks", "why"),
    [
        ("a\\b", (2,), "the escape before the newline would be escaped"),
        ("a #b", (2,), "the next line would be a comment"),
        ("a \u00a0#b", (1,), "the next line would be a comment"),
        ("ab", (0,), "outside the command"),
        ("ab", (2,), "outside the command"),
        ("abc", (2, 1), "out of order"),
    ],
)
def test_line_breaks_no_source_has_are_refused(
    command: str, breaks: tuple[int, ...], why: str
) -> None:
    with pytest.raises(InvalidInstructionError, match=why) as info:
        format_instruction(replace(RUN, command=(command,), breaks=breaks))
    assert info.value.span == Span(file="Dockerfile", line=7)


def test_line_breaks_are_written_where_the_ir_has_them() -> None:
    run = replace(RUN, command=("a  b  c",), breaks=(1, 1, 5))
    assert format_instruction(run) == "RUN a\\\n\\\n  b \\\n c\n"
    back = first(ir_of("FROM scratch\n" + format_instruction(run)))
    assert isinstance(back, ir.Run)
    assert (back.command, back.breaks) == (run.command, run.breaks)


def test_shell_text_that_reads_as_json_is_refused() -> None:
    with pytest.raises(InvalidInstructionError, match="reads as a JSON array"):
        format_instruction(replace(RUN, command=('["a"]',)))


def test_flag_value_no_byte_spells_is_refused() -> None:
    with pytest.raises(InvalidInstructionError, match="no UTF-8 byte spells") as info:
        format_instruction(replace(RUN, mounts=(ir.Mount(spec="target=/日"),)))
    assert info.value.span is not None


def test_copy_heredoc_body_with_blank_path_is_refused() -> None:
    copy = ir.Copy(
        span=Span(file="Dockerfile", line=3),
        keyword="COPY",
        original="",
        sources=("a b",),
        dest="/d",
        heredocs=(ir.InlineSource(path="EOF", data="x\n"),),
    )
    with pytest.raises(InvalidInstructionError, match="JSON form"):
        format_instruction(copy)
    empty = replace(copy, heredocs=(ir.InlineSource(path="EOF", data=""),))
    assert format_instruction(empty) == 'COPY ["a b", "<<EOF", "/d"]\n'


def test_errors_of_the_input_are_raised() -> None:
    with pytest.raises(DockerfileError, match="unknown instruction: FOO") as info:
        fmt("FROM a\nFOO x\n")
    assert info.value.span is not None
    assert info.value.span.line == 2
    with pytest.raises(BuildError):
        fmt("")


@pytest.mark.parametrize("escape", ["\\", "`"])
def test_legacy_value_ending_in_a_lone_escape_is_written_as_it_is_read(escape: str) -> None:
    """A legacy pair with key ``"`` and a lone escape as value (found by hypothesis): the
    parser drops an escape at the end of the line, so the canonical form drops it too and is
    a fixed point; both values expand to the same (empty) string."""
    directive = "" if escape == "\\" else "# escape=`\n"
    df = ir_of(f"{directive}FROM scratch\nENV a b\n")
    env = df.stages[0].instructions[0]
    assert isinstance(env, ir.Env)
    pair = ir.KeyValue(key='"', value=escape, legacy=True)
    df = replace(df, stages=(replace(df.stages[0], instructions=(replace(env, pairs=(pair,)),)),))
    out = format_dockerfile(df)
    assert out.endswith('ENV "=\n')
    assert fmt(out) == out


@pytest.mark.parametrize("escape", ["\\", "`"])
def test_as_word_drops_a_final_escape_inside_an_open_quote(escape: str) -> None:
    """The parser drops an escape that ends the text inside double quotes; as_word must not
    write one back (hypothesis found ``"\\``)."""
    from builder.syntax.format import as_word
    from builder.syntax.lineparse import parse_words

    word = '"a b' + escape
    written = as_word(word, escape)
    assert parse_words(written, escape) == [written]
    assert not written.endswith(escape)
