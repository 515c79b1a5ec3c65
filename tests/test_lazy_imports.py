"""Function-level imports are kept only where start-up time needs them, and say so.

An import inside a function must carry a ``# lazy: <reason>`` comment, or sit in a block of
imports headed by one (e.g. Lark, ~60 ms, loaded only when the parser's fast paths miss).
Every other import belongs at the top of its module.
"""

from __future__ import annotations

import ast

from tests.conftest import REPO

_MARK = "# lazy:"


def unexplained(text: str) -> list[int]:
    """Line numbers of the function-level imports of ``text`` that give no reason."""
    lines = text.splitlines()
    tree = ast.parse(text)
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    in_import = {i for n in imports for i in range(n.lineno, (n.end_lineno or n.lineno) + 1)}

    def explained(lineno: int) -> bool:
        if _MARK in lines[lineno - 1]:
            return True
        above = lineno - 1
        while above in in_import:  # the imports just before it, same block
            above -= 1
        return above >= 1 and lines[above - 1].strip().startswith(_MARK)

    nested = {
        node.lineno
        for func in ast.walk(tree)
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(func)
        if isinstance(node, ast.Import | ast.ImportFrom)
    }
    return sorted(n for n in nested if not explained(n))


def test_every_function_level_import_says_why_it_is_lazy() -> None:
    found = [
        f"{path.relative_to(REPO)}:{n}"
        for path in sorted((REPO / "builder").rglob("*.py"))
        for n in unexplained(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "function-level imports without a '# lazy: <reason>' comment"


def test_a_reason_covers_its_block_of_imports_only() -> None:
    text = (
        "import os\n"
        "\n"
        "def f():\n"
        "    import json\n"
        "\n"
        "def g():\n"
        "    # lazy: a reason\n"
        "    import json\n"
        "    from re import (\n"
        "        compile,\n"
        "    )\n"
        "    x = 1\n"
        "    import csv\n"
        "    import zlib  # lazy: another\n"
    )
    assert unexplained(text) == [4, 13]
