"""The formatter on real Dockerfiles: BuildKit's parser testfiles and our differential corpus.

For every file that converts to IR, the formatted text parses to the same IR (positions aside;
legacy ``ENV k v`` pairs become ``k=v`` with the same expansion), keeps every comment, and is a
fixed point. A file that does not convert makes the formatter raise the same located error.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.errors import BuildError, DockerfileError
from builder.syntax import ir
from builder.syntax.expand import Lexer
from builder.syntax.format import format_dockerfile, format_text, normalize
from builder.syntax.parser import parse
from builder.syntax.transform import to_ir
from builder.syntax.tree import AST
from tests.conftest import BUILDKIT_GOLDEN

REPO = Path(__file__).resolve().parents[3]
CORPUS = sorted((REPO / "tests" / "differential" / "corpus").glob("*.Dockerfile"))
PARSER = BUILDKIT_GOLDEN / "parser"
TESTFILES = sorted(PARSER.glob("testfiles*/*/Dockerfile"))
ENVIRONMENTS: tuple[dict[str, str], ...] = ({}, {"HOME": "/root", "PATH": "/bin", "a": "x y"})


def _instructions(df: ir.Dockerfile) -> list[ir.Instruction]:
    out: list[ir.Instruction] = list(df.global_args)
    for stage in df.stages:
        if stage.from_ is not None:
            out.append(stage.from_)
        out.extend(stage.instructions)
    triggers = [i.trigger for i in out if isinstance(i, ir.OnBuild) and i.trigger is not None]
    return out + triggers


def _expanded(word: str, escape: str) -> list[object]:
    lexer = Lexer(escape=escape)
    out: list[object] = []
    for env in ENVIRONMENTS:
        try:
            out.append(lexer.process_word(word, env))
        except BuildError:
            out.append(BuildError)
    return out


def _read(path: Path) -> tuple[str, AST | None, ir.Dockerfile | DockerfileError]:
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    try:
        ast = parse(text, path=str(path))
        return text, ast, to_ir(ast)
    except DockerfileError as err:
        return text, None, err


def check_file(path: Path) -> None:
    text, ast, df = _read(path)
    if not isinstance(df, ir.Dockerfile):
        with pytest.raises(DockerfileError) as info:
            format_text(text, path=str(path))
        assert (info.value.message, info.value.span) == (df.message, df.span)
        return
    assert ast is not None
    out = format_dockerfile(df, comments=ast.comments, directives=ast.directives)
    assert format_text(text, path=str(path)) == out
    again = parse(out, path=str(path))
    back = to_ir(again)
    assert normalize(back) == normalize(df)
    assert [c.text for c in again.comments] == [c.text for c in ast.comments]
    assert format_dockerfile(back, comments=again.comments, directives=again.directives) == out
    for old, new in zip(_instructions(df), _instructions(back), strict=True):
        if isinstance(old, ir.Env | ir.Label):
            assert isinstance(new, ir.Env | ir.Label)
            for a, b in zip(old.pairs, new.pairs, strict=True):
                assert _expanded(a.key, df.escape) == _expanded(b.key, df.escape)
                assert _expanded(a.value, df.escape) == _expanded(b.value, df.escape)


@pytest.mark.parametrize("path", TESTFILES, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_buildkit_testfile(path: Path) -> None:
    check_file(path)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_differential_corpus_file(path: Path) -> None:
    check_file(path)


def test_the_corpora_are_there() -> None:
    assert len(TESTFILES) >= 37
    assert len(CORPUS) >= 100
