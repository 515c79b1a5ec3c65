"""``pybuild check --fix`` on generated Dockerfiles: the fixed file checks clean for the fixable
rules, fixing it again changes nothing, and nothing but the fixed instructions changes meaning.

Files come from the IR strategies (``strategies.py``) written by the formatter, then made messy
the way people write them: keywords, ``AS`` and stage names in random case, legacy
``ENV key value`` / ``LABEL key value`` lines and shell-form CMD/ENTRYPOINT lines added.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from builder.lint.fix import FIXABLE
from builder.lint.inputs import LintInputs
from builder.lint.runner import LintResult, lint
from builder.syntax import ir
from builder.syntax.format import format_dockerfile, normalize
from builder.syntax.locate import Context, Where
from builder.syntax.parser import parse
from builder.syntax.transform import analyze, to_ir
from tests.property.strategies import dockerfiles

_WORD = st.from_regex(r"[a-z][a-z0-9_.-]{0,6}", fullmatch=True)
_CASES = st.sampled_from(["upper", "lower", "title", "same"])


def _recase(word: str, how: str) -> str:
    match how:
        case "upper":
            return word.upper()
        case "lower":
            return word.lower()
        case "title":
            return word[:1].upper() + word[1:].lower()
        case _:
            return word


def checked(text: str) -> LintResult:
    ast = parse(text, path="Dockerfile")
    return lint(ast, analyze(ast), LintInputs())


@st.composite
def messy(draw: st.DrawFn) -> str:
    df = draw(dockerfiles())
    text = format_dockerfile(df)
    ast = parse(text, path="Dockerfile")
    ctx = Context(ast)
    lines = text.split("\n")
    edits: list[tuple[int, int, int, str]] = []
    extra: dict[int, list[str]] = {}
    for node in ast.nodes:
        where = Where(ctx, node, 0, node.flags)
        spans = [where.keyword()]
        if node.cmd.upper() == "FROM" and len(node.args) == 3:
            spans += [where.arg(-2), where.arg(-1)]
            extra[node.end_line] = draw(st.lists(_extra_line(), max_size=3))
        for span in spans:
            if span.end_column is None or span.end_line != span.line:
                continue
            word = lines[span.line - 1][span.column - 1 : span.end_column]
            edits.append((span.line, span.column - 1, span.end_column, _recase(word, draw(_CASES))))
    for line, start, end, word in sorted(edits, reverse=True):
        lines[line - 1] = lines[line - 1][:start] + word + lines[line - 1][end:]
    out: list[str] = []
    for number, line in enumerate(lines, start=1):
        out.append(line)
        out.extend(extra.get(number, []))
    return "\n".join(out)


@st.composite
def _extra_line(draw: st.DrawFn) -> str:
    keyword = draw(st.sampled_from(["ENV", "LABEL", "CMD", "ENTRYPOINT", "env", "cmd"]))
    words = draw(st.lists(_WORD, min_size=2, max_size=4))
    if keyword.upper() in ("CMD", "ENTRYPOINT") and draw(st.booleans()):
        words.append(draw(st.sampled_from(["$HOME", "&&", "'a b'", "*.txt"])))
    return f"{keyword} {' '.join(words)}"


def _without_commands(df: ir.Dockerfile) -> list[list[ir.Instruction]]:
    normal = normalize(df)
    return [
        [i for i in stage.instructions if not isinstance(i, ir.Cmd | ir.Entrypoint)]
        for stage in normal.stages
    ]


@settings(max_examples=150, deadline=None)
@given(messy())
def test_fix_reaches_a_fixed_point_that_checks_clean(text: str) -> None:
    result = checked(text)
    fixed = result.fixed()
    after = checked(fixed)
    assert after.fixed() == fixed  # fixing again changes nothing
    left = {f.rule for f in after.findings} & FIXABLE
    # only shell-form commands that cannot be converted safely are left
    assert left <= {"JSONArgsRecommended"}
    for finding in after.findings:
        if finding.rule == "JSONArgsRecommended":
            assert finding.span is not None
            line = fixed.split("\n")[finding.span.line - 1]
            assert line.split(" ", 1)[0].upper() in ("CMD", "ENTRYPOINT")
    # the meaning of everything but the converted commands is kept
    before_ir = to_ir(parse(text, path="Dockerfile"))
    after_ir = to_ir(parse(fixed, path="Dockerfile"))
    assert _without_commands(after_ir) == _without_commands(before_ir)
    assert normalize(after_ir).global_args == normalize(before_ir).global_args
