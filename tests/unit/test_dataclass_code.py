"""The dataclass bytecode cache: classes made from it are the classes made without it."""

from __future__ import annotations

import importlib.util
import marshal
import os
import subprocess
import sys
from pathlib import Path

import pytest

import builder
from builder import _dataclass_code as dc

# Prints one line per generated method of every dataclass in the package: where it is, and a
# digest of its code object (bytecode, constants, names, variables), for the three processes below.
FINGERPRINT = r"""
import dataclasses, hashlib, importlib, pkgutil, sys, types
import builder
for info in pkgutil.walk_packages(builder.__path__, prefix="builder."):
    if info.name.endswith(".__main__"):
        continue
    module = importlib.import_module(info.name)
    for value in sorted(vars(module).values(), key=repr):
        if not (isinstance(value, type) and dataclasses.is_dataclass(value)):
            continue
        if value.__module__ != module.__name__:
            continue
        for attr in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__"):
            fn = value.__dict__.get(attr)
            code = getattr(getattr(fn, "__wrapped__", fn), "__code__", None)
            if code is None:
                continue
            parts = (code.co_code, repr(code.co_consts), code.co_names, code.co_varnames,
                     code.co_freevars, code.co_flags, code.co_filename, code.co_firstlineno,
                     fn.__qualname__, repr(getattr(fn, "__annotations__", None)))
            digest = hashlib.sha256(repr(parts).encode()).hexdigest()
            print(info.name, value.__qualname__, attr, digest)
"""


def _fingerprints(env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", FINGERPRINT],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
        timeout=300,
    )
    return done.stdout.splitlines()


def test_classes_from_the_cache_are_the_classes_compiled_afresh() -> None:
    package = Path(builder.__file__).parent
    for old in package.rglob(f"*.{dc.SUFFIX}"):  # every file compiled afresh by the cache
        old.unlink()
    subprocess.run(
        [sys.executable, "-c", "from builder._dataclass_code import warm; warm()"],
        check=True,
        timeout=300,
    )
    assert len(list(package.rglob(f"*.{dc.SUFFIX}"))) > 50
    without = _fingerprints({dc.ENV_OFF: "1"})
    cached = _fingerprints({"PYTHONDONTWRITEBYTECODE": "1"})
    assert len(without) > 500  # __init__, __eq__, ... of the package's ~180 dataclasses
    assert cached == without


def test_install_is_on_in_this_interpreter_and_idempotent() -> None:
    assert builder._dataclass_code.install()
    assert dc.install()


def test_cache_files_sit_beside_the_pyc(tmp_path: Path) -> None:
    tag = sys.implementation.cache_tag
    assert dc.cache_file("/x/pkg/mod.py") == f"/x/pkg/__pycache__/mod.{tag}.dataclasses"


def test_a_missing_torn_or_foreign_file_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "m.dataclasses"
    assert dc.load(str(path)) == {}
    code = compile("x = 1", "<string>", "exec")
    good = importlib.util.MAGIC_NUMBER + marshal.dumps({"x = 1": code})
    path.write_bytes(good)
    assert dc.load(str(path)) == {"x = 1": code}
    path.write_bytes(good[:-5])  # torn
    assert dc.load(str(path)) == {}
    path.write_bytes(b"\0\0\0\0" + good[4:])  # another interpreter's bytecode
    assert dc.load(str(path)) == {}
    path.write_bytes(importlib.util.MAGIC_NUMBER + marshal.dumps(["not", "a", "table"]))
    assert dc.load(str(path)) == {}
    path.write_bytes(importlib.util.MAGIC_NUMBER + marshal.dumps({"x = 1": "not code", 3: code}))
    assert dc.load(str(path)) == {}


def test_only_pybuild_modules_are_cached(tmp_path: Path) -> None:
    cache = dc._Cache()
    outside = str(tmp_path / "other.py")
    inside = str(Path(dc.__file__).with_name("nowhere_module.py"))
    text = "def __create_fn__():\n def f():\n  return 1\n return f"
    assert cache.compiled(text, outside).co_name == "<module>"
    assert cache.compiled(text, None).co_name == "<module>"
    assert list(cache.modules) == []
    first = cache.compiled(text, inside)
    assert cache.compiled(text, inside) is first  # compiled once
    assert list(cache.modules) == [inside]
    assert cache.modules[inside].stale()  # nothing on disk yet: worth writing


@pytest.mark.parametrize("flag", ["PYTHONDONTWRITEBYTECODE", dc.ENV_OFF])
def test_no_file_is_written_when_bytecode_writing_or_the_cache_is_off(
    tmp_path: Path, flag: str
) -> None:
    target = Path(dc.cache_file(str(Path(builder.__file__).with_name("timings.py"))))
    target.unlink(missing_ok=True)
    subprocess.run(
        [sys.executable, "-c", "import builder.timings"],
        env={**os.environ, flag: "1"},
        check=True,
        timeout=120,
    )
    assert not target.exists()
    subprocess.run(
        [sys.executable, "-c", "import builder.timings"],
        env={
            k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", dc.ENV_OFF)
        },
        check=True,
        timeout=120,
    )
    assert target.exists()
    assert dc.load(str(target))  # the module's dataclass methods
