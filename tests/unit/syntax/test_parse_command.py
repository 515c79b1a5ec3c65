"""``pybuild parse --json`` writes what ``json.dumps(..., indent=2)`` writes, faster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from builder.cli import main
from builder.commands.parse import indented_json
from builder.syntax.parser import parse

DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM busybox AS build
ENV A="v 1" B=x C='quoted \\u00e9 é "q"'
LABEL org.example.l="x" m=y
RUN <<EOF
echo one
EOF
COPY --chown=1:1 --chmod=644 src/ /dst/
CMD ["sh", "-c", "echo \\t tab"]
ONBUILD RUN echo later
HEALTHCHECK --interval=5s CMD true
"""

leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(), st.floats(allow_nan=False))
value = st.recursive(
    leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
objects = st.lists(st.dictionaries(st.text(), value, max_size=5), max_size=4)


@given(objects)
def test_indented_json_is_json_dumps_with_indent_2(items: list[dict[str, Any]]) -> None:
    assert indented_json(items) == json.dumps(items, ensure_ascii=False, indent=2)


def test_parse_json_prints_the_nodes_as_json_dumps_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(DOCKERFILE, encoding="utf-8")
    assert main(["parse", "--json", "-f", str(path)]) == 0
    out = capsys.readouterr().out
    nodes = [n.to_json() for n in parse(DOCKERFILE, path=str(path)).nodes]
    assert out == json.dumps(nodes, ensure_ascii=False, indent=2) + "\n"
    assert json.loads(out)[3]["heredocs"][0]["content"] == "echo one\n"
