"""A bytecode cache for the methods ``dataclasses`` generates, as ``__pycache__`` is for modules.

``@dataclass`` writes the source of each class's ``__init__``, ``__repr__``, ``__eq__``,
``__hash__``, ``__setattr__`` and ``__delattr__`` and compiles it when the class is created, every
time a module is imported. The ~175 dataclasses a cold build imports cost about 115 ms of
compiling per process that way: more than half of a cold build's imports.

:func:`install` wraps ``dataclasses._create_fn`` (CPython 3.11 and 3.12, where it compiles one
function from source text; other versions are left alone) so that the code objects of a module's
dataclasses come from a file beside the module's ``.pyc``
(``__pycache__/<module>.<cache tag>.dataclasses``), kept under the ``.pyc`` rules: loaded when the
module makes its first dataclass, written at exit for the modules that compiled something (not
with ``PYTHONDONTWRITEBYTECODE``), stamped with the interpreter's bytecode magic number; a
missing, torn or foreign file is ignored. A file holds exactly the texts its module asked for in
the process that wrote it, so it follows the source. The code object of a text is what ``exec``
compiles from it (same flags, no inherited ``__future__`` features): a class made from the cache
is the class made without it, its functions made by running that code in the module's globals.
The files are as trusted as the ``.pyc`` files beside them. ``PYBUILD_NO_DATACLASS_CACHE=1``
turns the cache off.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import importlib
import importlib.util
import marshal
import os
import sys
import threading
from types import CodeType
from typing import Any, Final

ENV_OFF: Final = "PYBUILD_NO_DATACLASS_CACHE"
SUFFIX: Final = "dataclasses"
_MAGIC: Final = importlib.util.MAGIC_NUMBER
_PACKAGE: Final = os.path.dirname(os.path.abspath(__file__)) + os.sep  # only pybuild's modules


def cache_file(module_file: str) -> str:
    """The cache file of the module at ``module_file`` (beside its ``.pyc``)."""
    directory, name = os.path.split(module_file)
    stem = name.rsplit(".", 1)[0]
    tag = sys.implementation.cache_tag or "python"
    return os.path.join(directory, "__pycache__", f"{stem}.{tag}.{SUFFIX}")


def load(path: str) -> dict[str, CodeType]:
    """The table of the cache file at ``path``; empty when it is missing, torn or foreign."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return {}
    if data[: len(_MAGIC)] != _MAGIC:
        return {}
    try:
        table = marshal.loads(data[len(_MAGIC) :])
    except (EOFError, ValueError, TypeError):
        return {}
    if not isinstance(table, dict):
        return {}
    return {k: v for k, v in table.items() if isinstance(k, str) and isinstance(v, CodeType)}


class _Module:
    """One module's code objects: those in its file, and the ones it asked for (``used``)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.loaded = load(path)
        self.used: dict[str, CodeType] = {}

    def stale(self) -> bool:
        """Is the file not exactly what this process used (something compiled, or unused)?"""
        return self.used.keys() != self.loaded.keys()


class _Cache:
    def __init__(self) -> None:
        self.modules: dict[str, _Module] = {}
        self.lock = threading.Lock()

    def compiled(self, text: str, module_file: str | None) -> CodeType:
        """The code object ``exec(text)`` runs; from the cache of ``module_file`` if it has it."""
        if module_file is None or not module_file.startswith(_PACKAGE):
            return compile(text, "<string>", "exec", dont_inherit=True)
        with self.lock:
            module = self.modules.get(module_file)
            if module is None:
                module = self.modules[module_file] = _Module(cache_file(module_file))
            code = module.loaded.get(text) or module.used.get(text)
            if code is None:
                code = compile(text, "<string>", "exec", dont_inherit=True)
            module.used[text] = code
            return code

    def save(self, *, force: bool = False) -> int:
        """Write the file of every module whose file differs from what it used; how many."""
        with self.lock:
            modules = [m for m in self.modules.values() if force or m.stale()]
            tables = [(m.path, dict(m.used)) for m in modules]
        for path, table in tables:
            tmp = f"{path}.{os.getpid()}.tmp"
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(tmp, "wb") as fh:
                    fh.write(_MAGIC + marshal.dumps(table))
                os.replace(tmp, path)
            except OSError:  # a read-only installation: the cache only saves time
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        return len(tables)


_cache = _Cache()


def _supported(create_fn: Any) -> bool:
    code = getattr(create_fn, "__code__", None)
    return (
        sys.implementation.name == "cpython"
        and sys.version_info[:2] in ((3, 11), (3, 12))
        and code is not None
        and code.co_varnames[:6] == ("name", "args", "body", "globals", "locals", "return_type")
        and code.co_argcount == 3
        and code.co_kwonlyargcount == 3
    )


def install() -> bool:
    """Serve ``dataclasses``' generated methods from the cache (once per process); False when
    this interpreter's ``dataclasses`` is not the one this module knows, or it is turned off."""
    original = dataclasses._create_fn  # type: ignore[attr-defined]
    if getattr(original, "_pybuild_cached", False):
        return True
    if os.environ.get(ENV_OFF) or not _supported(original):
        return False
    missing = dataclasses.MISSING

    # The body of CPython 3.11's dataclasses._create_fn, with compile() replaced by the cache.
    def _create_fn(
        name: str,
        args: tuple[str, ...],
        body: list[str],
        *,
        globals: dict[str, Any] | None = None,
        locals: dict[str, Any] | None = None,
        return_type: Any = missing,
    ) -> Any:
        if globals is None:
            return original(name, args, body, locals=locals, return_type=return_type)
        if locals is None:
            locals = {}
        return_annotation = ""
        if return_type is not missing:
            locals["_return_type"] = return_type
            return_annotation = "->_return_type"
        joined = ",".join(args)
        lines = "\n".join(f"  {b}" for b in body)
        txt = f" def {name}({joined}){return_annotation}:\n{lines}"
        local_vars = ", ".join(locals.keys())
        txt = f"def __create_fn__({local_vars}):\n{txt}\n return {name}"
        module_file = globals.get("__file__")
        ns: dict[str, Any] = {}
        exec(
            _cache.compiled(txt, module_file if isinstance(module_file, str) else None), globals, ns
        )
        return ns["__create_fn__"](**locals)

    _create_fn._pybuild_cached = True  # type: ignore[attr-defined]
    dataclasses._create_fn = _create_fn  # type: ignore[attr-defined]
    if not sys.dont_write_bytecode:
        atexit.register(_cache.save)
    return True


def warm() -> int:
    """Import every module of the package and write its cache files, whatever
    ``PYTHONDONTWRITEBYTECODE`` says (``make venv`` runs it, as ``compileall`` writes ``.pyc``
    files); the number of files written."""
    import pkgutil  # lazy: only make venv's warm-up walks the package

    if not install():
        return 0
    package = os.path.dirname(__file__)
    for module in pkgutil.walk_packages([package], prefix=f"{__package__}."):
        if not module.name.endswith(".__main__"):
            importlib.import_module(module.name)
    return _cache.save(force=True)
