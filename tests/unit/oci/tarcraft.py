"""Helpers for layer tests: hand-made (possibly hostile) tar archives and tree snapshots.

Imported by the test modules beside it (pytest puts this directory on ``sys.path``)."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

Entry = tuple[str, ...]


def build_tar(entries: list[Entry], *, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """``("file", name, data[, mode])``, ``("dir", name)``, ``("symlink", name, target)``,
    ``("link", name, target)``, ``("fifo", name)`` -> uncompressed tar bytes (names verbatim)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for kind, name, *rest in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_000_000
            data = b""
            if kind == "file":
                data = rest[0].encode() if rest else b""
                info.mode = int(rest[1], 8) if len(rest) > 1 else 0o644
                info.size = len(data)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = int(rest[0], 8) if rest else 0o755
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = rest[0]
                info.mode = 0o777
            elif kind == "link":
                info.type = tarfile.LNKTYPE
                info.linkname = rest[0]
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            else:
                raise AssertionError(kind)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def tree_state(root: Path) -> dict[str, tuple[int, int, int, str]]:
    """(mode, uid, mtime_ns, content-or-link hash) for every path under ``root`` (no follow)."""
    out: dict[str, tuple[int, int, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            st = p.lstat()
            if p.is_symlink():
                digest = "link:" + os.readlink(p)
            elif p.is_file():
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                digest = ""
            out[str(p.relative_to(root))] = (st.st_mode, st.st_uid, st.st_mtime_ns, digest)
    st = root.lstat()
    out["."] = (st.st_mode, st.st_uid, st.st_mtime_ns, "")
    return out


def in_root(root: Path, path: str, *, follow_last: bool = True) -> Path:
    """Resolve ``path`` inside ``root`` with chroot semantics (independent of the code under test:
    a plain readlink loop), so validators never look at the host through an absolute link."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while parts:
        comp = parts.pop(0)
        if comp == "..":
            if done:
                done.pop()
            continue
        candidate = root.joinpath(*done, comp)
        if candidate.is_symlink() and (parts or follow_last):
            hops += 1
            assert hops < 64, "symlink loop"
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        done.append(comp)
    return root.joinpath(*done)
