"""The public Python API, re-exported by ``builder/__init__.py`` (see its docstring).

Thin, typed wrappers: :func:`build` over :func:`builder.api.build` (the composition root),
:func:`parse` and :func:`check` over the Dockerfile front end, and the image functions over
:class:`builder.store.Store`. They raise pybuild's exceptions (:mod:`builder.errors`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from builder.errors import (
    BuildError,
    ContextError,
    Diagnostic,
    Level,
    ParseError,
    StoreError,
    span_order,
)

if TYPE_CHECKING:
    from builder.api import BuildResult
    from builder.engine.events import Event
    from builder.oci.config import ImageConfig
    from builder.store import ImageRecord, Store
    from builder.syntax.ir import Dockerfile

PathLike = str | os.PathLike[str]
EventCallback = Callable[["Event"], None]


class _CallbackSink:
    """Hands each progress event to ``callback`` (if any), one call at a time (stages run in
    threads)."""

    def __init__(self, callback: EventCallback | None) -> None:
        self._callback = callback
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        if self._callback is not None:
            with self._lock:
                self._callback(event)

    def close(self, *, ok: bool) -> None:
        pass


def _pairs(values: Mapping[str, str] | Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    items = values.items() if isinstance(values, Mapping) else values
    return tuple((str(k), str(v)) for k, v in items)


def build(
    context: PathLike = ".",
    *,
    dockerfile: PathLike | None = None,
    tags: str | Iterable[str] = (),
    build_args: Mapping[str, str | None] | None = None,
    target: str | None = None,
    no_cache: bool = False,
    pull: bool = False,
    labels: Mapping[str, str] | None = None,
    network: str = "default",
    allow: Iterable[str] = (),
    platform: str | None = None,
    memory: int | str | None = None,
    cpus: float | None = None,
    runtime: str = "runc",
    root: PathLike | None = None,
    secrets: str | Iterable[str] = (),
    ssh: str | Iterable[str] = (),
    build_contexts: Mapping[str, str] | None = None,
    outputs: str | Iterable[str] = (),
    push: bool = False,
    on_event: EventCallback | None = None,
) -> BuildResult:
    """Build the Dockerfile of ``context`` and store the image, as ``pybuild build`` does.

    ``context`` is a directory, a git or tarball URL, or ``"-"`` (stdin); ``dockerfile``
    defaults to ``CONTEXT/Dockerfile``; ``network`` is RUN's default network (``default``:
    private, ``none``, ``host`` with ``allow=["network.host"]``); ``tags`` name the image
    (``"app:1"``); a ``build_args`` value of None takes the variable from the environment;
    ``memory`` is bytes or Docker's syntax (``"512m"``); ``root`` is the image store
    (default ``$PYBUILD_ROOT``); ``secrets`` are ``--secret`` specs
    (``"id=tok,src=token.txt"``, ``"id=tok,env=TOKEN"``; ``"id=tok"`` reads ``$tok``);
    ``ssh`` are ``--ssh`` specs (``"default"``: ``$SSH_AUTH_SOCK``; ``"git=~/.ssh/id_ed25519"``);
    ``build_contexts`` maps names to ``--build-context`` values (``{"src": "../lib"}``).
    ``outputs`` are ``-o`` values (``"type=oci,dest=img.tar"``, ``"type=local,dest=out"``) and
    ``push`` is ``--push`` (:mod:`builder.engine.outputs`); with them, ``tags`` name the image
    in the store only through an image output, as with ``pybuild build``.
    ``on_event`` receives every progress event (:mod:`builder.engine.events`), one call at a
    time, possibly from a worker thread.

    Returns the image ID, the manifest digest, the full tag names and one
    :class:`~builder.engine.results.StepResult` per layer step. Raises
    :class:`~builder.errors.BuildError` subclasses: ``DockerfileError`` (with the Dockerfile
    span), ``ContextError``, ``ExecutionError``/``RunStepError`` (with the failing step's span),
    ``RegistryError``, ``StoreError``, ``EnvironmentUnavailableError`` (no root, no runtime).
    """
    # lazy: import builder stays cheap; the engine loads when a build starts
    from builder.api import BuildOptions
    from builder.api import build as run_build
    from builder.engine.outputs import parse_output, resolve_outputs, store_names
    from builder.engine.secrets import parse_secret_spec
    from builder.engine.ssh import parse_ssh_spec

    if isinstance(memory, str):
        from builder.units import ram_in_bytes  # lazy: only for a memory given as text

        size = ram_in_bytes(memory)
        if size is None:
            raise BuildError(f"invalid memory size {memory!r}: use e.g. 512m or 1g")
        memory = size
    names = (tags,) if isinstance(tags, str) else tuple(tags)
    chosen = resolve_outputs(
        [parse_output(o) for o in ([outputs] if isinstance(outputs, str) else outputs)],
        tags=names,
        push=push,
    )
    options = BuildOptions(
        context=os.fspath(context),
        dockerfile=os.fspath(dockerfile) if dockerfile is not None else None,
        tags=store_names(chosen, names),
        outputs=chosen,
        build_args=tuple((str(k), v) for k, v in (build_args or {}).items()),
        target=target,
        no_cache=no_cache,
        pull=pull,
        labels=_pairs(labels or {}),
        network=network,
        allow=tuple(allow),
        platform=platform,
        memory=memory,
        cpus=cpus,
        runtime=runtime,
        root=os.fspath(root) if root is not None else None,
        secrets=tuple(
            parse_secret_spec(s) for s in ([secrets] if isinstance(secrets, str) else secrets)
        ),
        ssh=tuple(parse_ssh_spec(s) for s in ([ssh] if isinstance(ssh, str) else ssh)),
        build_contexts=tuple(f"{k}={v}" for k, v in (build_contexts or {}).items()),
    )
    return run_build(options, sink=_CallbackSink(on_event))


# --------------------------------------------------------------------------- Dockerfiles


def _source(text: str | None, path: PathLike | None) -> tuple[str, str]:
    """(display name, text) of a Dockerfile given as text or as a path (exactly one)."""
    if (text is None) == (path is None):
        raise BuildError("give the Dockerfile as text or as path=..., not both or neither")
    if text is not None:
        return "Dockerfile", text
    assert path is not None
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ContextError(
            f"failed to read dockerfile: open {os.fspath(path)}: {err.strerror or err}"
        ) from None
    return os.path.basename(os.fspath(path)), data.decode("utf-8", "surrogateescape")


def parse(text: str | None = None, *, path: PathLike | None = None) -> Dockerfile:
    """The typed IR (:class:`builder.syntax.ir.Dockerfile`) of a Dockerfile given as ``text``
    or read from ``path``. Raises :class:`~builder.errors.DockerfileError` (its ``span`` gives
    the line and column) for the first problem; warnings are in ``.diagnostics``."""
    # lazy: the parser loads on the first parse, not at import builder
    from builder.syntax.parser import parse as parse_text
    from builder.syntax.transform import to_ir

    name, source = _source(text, path)
    return to_ir(parse_text(source, path=name))


def check(text: str | None = None, *, path: PathLike | None = None) -> tuple[Diagnostic, ...]:
    """Every problem of a Dockerfile (as ``pybuild check`` reports them), in file order:
    errors (``level`` ERROR, ``rule`` the error's kind, e.g. ``ParseError``) and warnings
    (``rule`` the BuildKit check name). Empty when the file is clean; never raises for the
    file's content."""
    # lazy: the parser and the lint rules load on the first check, not at import builder
    from builder.lint.config import CheckOptionError
    from builder.lint.runner import lint
    from builder.syntax.parser import parse as parse_text
    from builder.syntax.transform import analyze

    name, source = _source(text, path)
    try:
        ast = parse_text(source, path=name)
    except ParseError as err:
        return (_diagnostic(err),)
    result = analyze(ast)
    found = [_diagnostic(e) for e in result.errors]
    try:
        found.extend(lint(ast, result).findings)
    except CheckOptionError as err:  # a bad ``# check=`` directive is the file's problem too
        found.append(_diagnostic(BuildError(f"failed to parse check options: {err.message}")))
    return tuple(sorted(found, key=lambda d: span_order(d.span)))


def _diagnostic(err: BuildError) -> Diagnostic:
    return Diagnostic(
        level=Level.ERROR, rule=type(err).__name__, message=err.message, span=err.span
    )


# --------------------------------------------------------------------------- images


def _store(root: PathLike | None) -> Store:
    from builder.store import Store  # lazy: the store loads on first use, not at import builder

    return Store.open(root)


def images(*, root: PathLike | None = None) -> tuple[ImageRecord, ...]:
    """Every image in the store (as ``pybuild images`` lists them), each with its names."""
    return _store(root).list_images()


def resolve(reference: str, *, root: PathLike | None = None) -> ImageRecord:
    """The image ``reference`` names: ``name[:tag]``, ``name@sha256:...``, a manifest digest
    or an image ID (prefix). Raises :class:`~builder.errors.StoreError` when there is none."""
    return _store(root).resolve(reference)


def inspect(reference: str, *, root: PathLike | None = None) -> ImageConfig:
    """The image config (``Env``, ``Cmd``, history, ``diff_ids`` ...) of ``reference``."""
    store = _store(root)
    return store.load_image(store.resolve(reference).descriptor).config


def remove_tag(name: str, *, root: PathLike | None = None) -> None:
    """Remove the name ``name`` (``docker rmi`` of a tag); the image's blobs stay until a
    prune. Raises :class:`~builder.errors.StoreError` when no image has that name."""
    if not _store(root).untag(name):
        raise StoreError(f"No such image: {name}")
