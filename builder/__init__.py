"""pybuild: a daemonless Dockerfile build engine, usable from Python.

::

    import builder

    result = builder.build("app", tags="app:dev", build_args={"VERSION": "1.2"},
                           on_event=lambda event: print(event))
    print(result.image_id, [(s.text, s.cached) for s in result.steps])

    builder.check(path="app/Dockerfile")          # -> (Diagnostic, ...)
    builder.parse("FROM busybox\\nRUN true\\n")     # -> Dockerfile IR
    builder.resolve("app:dev").id                 # images(), inspect(), remove_tag()

Everything raises :class:`BuildError` subclasses (``builder.errors``). The names below load on
first use, so ``import builder`` (and the ``pybuild`` command) stays fast.
"""

from __future__ import annotations

import importlib

from builder import _dataclass_code

_dataclass_code.install()  # before any module of the package makes its dataclasses

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from builder._public import build, check, images, inspect, parse, remove_tag, resolve
    from builder.api import BuildOptions, BuildResult
    from builder.engine.events import (
        Event,
        VertexCached,
        VertexDone,
        VertexExplain,
        VertexLog,
        VertexStarted,
        VertexStatus,
    )
    from builder.engine.results import StepResult
    from builder.errors import (
        BuildError,
        ContextError,
        Diagnostic,
        DockerfileError,
        EnvironmentUnavailableError,
        ExecutionError,
        Level,
        ParseError,
        RegistryError,
        RunStepError,
        Span,
        StoreError,
    )
    from builder.oci.config import ImageConfig
    from builder.store.layout import ImageRecord
    from builder.syntax.ir import Dockerfile

_FROM = {
    "builder._public": ("build", "check", "images", "inspect", "parse", "remove_tag", "resolve"),
    "builder.api": ("BuildOptions", "BuildResult"),
    "builder.engine.results": ("StepResult",),
    "builder.engine.events": (
        "Event",
        "VertexCached",
        "VertexDone",
        "VertexExplain",
        "VertexLog",
        "VertexStarted",
        "VertexStatus",
    ),
    "builder.errors": (
        "BuildError",
        "ContextError",
        "Diagnostic",
        "DockerfileError",
        "EnvironmentUnavailableError",
        "ExecutionError",
        "Level",
        "ParseError",
        "RegistryError",
        "RunStepError",
        "Span",
        "StoreError",
    ),
    "builder.oci.config": ("ImageConfig",),
    "builder.store.layout": ("ImageRecord",),
    "builder.syntax.ir": ("Dockerfile",),
}
_MODULE_OF = {name: module for module, names in _FROM.items() for name in names}

__all__ = [
    "BuildError",
    "BuildOptions",
    "BuildResult",
    "ContextError",
    "Diagnostic",
    "Dockerfile",
    "DockerfileError",
    "EnvironmentUnavailableError",
    "Event",
    "ExecutionError",
    "ImageConfig",
    "ImageRecord",
    "Level",
    "ParseError",
    "RegistryError",
    "RunStepError",
    "Span",
    "StepResult",
    "StoreError",
    "VertexCached",
    "VertexDone",
    "VertexExplain",
    "VertexLog",
    "VertexStarted",
    "VertexStatus",
    "build",
    "check",
    "images",
    "inspect",
    "parse",
    "remove_tag",
    "resolve",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
