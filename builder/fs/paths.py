"""Slash-separated path strings with Go's ``path`` package semantics (the one path cleaner).

Image paths, Dockerfile paths and layer entry names are Go ``path`` strings, whatever the host:
``clean`` is ``path.Clean`` (one ``/`` between components, no ``.``, ``..`` resolved lexically
and dropped above the root of a rooted path), ``join`` is ``path.Join``. ``os.path.normpath``
differs (it keeps a leading ``//``), so nothing in pybuild uses it for these paths.
"""

from __future__ import annotations

__all__ = ["clean", "clean_abs", "join", "split"]


def clean(path: str) -> str:
    """Go's ``path.Clean``: ``""`` is ``.``, ``a//b/../c/`` is ``a/c``, ``/..`` is ``/``."""
    if not path:
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(comp)
    joined = "/".join(parts)
    if rooted:
        return "/" + joined
    return joined or "."


def clean_abs(path: str) -> str:
    """``path`` taken from the root and cleaned: ``"a/../b/"`` -> ``"/b"``, ``""`` -> ``"/"``."""
    return clean("/" + path)


def join(*elems: str) -> str:
    """Go's ``path.Join``: the non-empty elements joined with ``/`` and cleaned (``""`` if none)."""
    kept = [e for e in elems if e]
    return clean("/".join(kept)) if kept else ""


def split(path: str) -> list[str]:
    """The components of ``path`` with empty and ``.`` ones dropped (``..`` kept for a walk)."""
    return [c for c in path.split("/") if c not in ("", ".")]
