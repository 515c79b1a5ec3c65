"""Nothing outside the context is read, nothing outside the layer directory is written."""

from __future__ import annotations

import io
import os
import tarfile
import uuid
from pathlib import Path

import pytest
from copykit import Step, run, tree, write

from builder.context.local import LocalContext
from builder.engine.copy_digest import copy_source_digest
from builder.errors import ContextError


def _snapshot(path: Path) -> dict[str, str]:
    return tree(path) if path.exists() else {}


def test_context_symlink_to_outside_is_copied_as_symlink(tmp_path: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.write_text("TOP SECRET")
    root = tmp_path / "ctx"
    write(root, "d/ok", "ok")
    os.symlink(str(secret), root / "d" / "escape")
    os.symlink("../../host-secret", root / "d" / "rel-escape")
    run(root, Step(sources=("d", "."), dest="/x/"), tmp_path / "out")
    files = tree(tmp_path / "out")
    assert files["x/escape"] == f"-> {secret}"
    assert files["x/rel-escape"] == "-> ../../host-secret"
    assert "TOP SECRET" not in files.values()
    # the digest covers the link text, never the target's content
    ctx = LocalContext.open(root)
    before = copy_source_digest(ctx, Step(sources=("d",), dest="/x/"))
    secret.write_text("changed")
    after = copy_source_digest(ctx, Step(sources=("d",), dest="/x/"))
    assert before == after


def test_symlink_source_is_resolved_inside_the_context(tmp_path: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.write_text("TOP SECRET")
    root = tmp_path / "ctx"
    write(root, "etc/passwd", "context passwd")
    os.symlink("/etc/passwd", root / "abs")
    os.symlink(str(secret), root / "escape")
    run(root, Step(sources=("abs",), dest="/p"), tmp_path / "o1")
    assert tree(tmp_path / "o1") == {"p": "context passwd"}
    with pytest.raises(ContextError, match="not found"):
        run(root, Step(sources=("escape",), dest="/p"), tmp_path / "o2")
    assert _snapshot(tmp_path / "o2") == {}


def test_dotdot_sources_read_the_clamped_context_path(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    write(root, "etc/passwd", "context passwd")
    run(root, Step(sources=("../../etc/passwd",), dest="/p"), tmp_path / "o1")
    assert tree(tmp_path / "o1") == {"p": "context passwd"}
    with pytest.raises(ContextError, match='"/etc/shadow": not found'):
        run(root, Step(sources=("../../../etc/shadow",), dest="/p"), tmp_path / "o2")


def test_dest_symlink_in_image_stays_in_the_layer(tmp_path: Path) -> None:
    name = f"pybuild-test-{uuid.uuid4().hex}"
    root = tmp_path / "ctx"
    write(root, name, "payload")
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    os.symlink("/etc", rootfs / "app")
    os.symlink("../../../../../../etc", rootfs / "rel")
    os.symlink("/etc/" + name, rootfs / "direct")
    for i, dest in enumerate(("/app/", "/rel/", "/direct")):
        out = tmp_path / f"o{i}"
        run(root, Step(sources=(name,), dest=dest), out, rootfs=rootfs)
        assert tree(out) == {"etc": "dir", f"etc/{name}": "payload"}, dest
    assert not os.path.exists(f"/etc/{name}")
    assert tree(rootfs) == {
        "etc": "dir",
        "app": "-> /etc",
        "rel": "-> ../../../../../../etc",
        "direct": f"-> /etc/{name}",
    }


def test_dest_parent_symlink_is_followed_in_root(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    write(root, "f", "F")
    rootfs = tmp_path / "rootfs"
    (rootfs / "srv" / "data").mkdir(parents=True)
    os.symlink("/srv", rootfs / "opt")
    run(root, Step(sources=("f",), dest="/opt/data/new/"), tmp_path / "out", rootfs=rootfs)
    assert tree(tmp_path / "out") == {
        "srv": "dir",
        "srv/data": "dir",
        "srv/data/new": "dir",
        "srv/data/new/f": "F",
    }


def test_layer_symlinks_are_never_written_through(tmp_path: Path) -> None:
    target = tmp_path / "host"
    target.mkdir()
    root = tmp_path / "ctx"
    os.makedirs(root / "one")
    os.symlink(str(target), root / "one" / "sub")
    write(root, "two/sub/file", "evil")
    with pytest.raises(ContextError, match="cannot copy to non-directory: /d/sub"):
        run(root, Step(sources=("one", "two"), dest="/d/"), tmp_path / "out")
    assert list(target.iterdir()) == []


def test_whiteout_names_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    write(root, "d/.wh.passwd", "x")
    with pytest.raises(ContextError, match="reserved for whiteouts"):
        run(root, Step(sources=("d",), dest="/etc/"), tmp_path / "out")


def test_chown_reads_passwd_in_root(tmp_path: Path) -> None:
    host = tmp_path / "host-passwd"
    host.write_text("evil:x:666:666::/:/bin/sh\n")
    root = tmp_path / "ctx"
    write(root, "f", "F")
    rootfs = tmp_path / "rootfs"
    write(rootfs, "real/passwd", "evil:x:1:2::/:/bin/sh\n")
    (rootfs / "etc").mkdir()
    os.symlink(str(host), rootfs / "etc" / "passwd")  # absolute: resolved in the rootfs
    with pytest.raises(ContextError, match="unable to find user evil"):
        run(root, Step(sources=("f",), dest="/f", chown="evil"), tmp_path / "o1", rootfs=rootfs)
    os.remove(rootfs / "etc" / "passwd")
    os.symlink("../real/passwd", rootfs / "etc" / "passwd")
    res = run(root, Step(sources=("f",), dest="/f", chown="evil"), tmp_path / "o2", rootfs=rootfs)
    item = res.get("/f")
    assert item is not None
    assert (item.uid, item.gid) == (1, 2)


def _tar(entries: list[tuple[str, str, bytes | str]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                raw = data if isinstance(data, bytes) else data.encode()
                info.size = len(raw)
                tf.addfile(info, io.BytesIO(raw))
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = str(data)
                tf.addfile(info)
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = str(data)
                tf.addfile(info)
            else:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([("../evil", "file", "x")], "outside of the destination"),
        ([("a/../../evil", "file", "x")], "outside of the destination"),
        (
            [("ok", "file", "x"), ("h", "hardlink", "../../etc/passwd")],
            "outside of the destination",
        ),
        ([("l", "symlink", "../../../etc")], "outside of the destination"),
    ],
)
def test_archive_breakouts_are_refused(
    tmp_path: Path, entries: list[tuple[str, str, bytes | str]], message: str
) -> None:
    root = tmp_path / "ctx"
    write(root, "a.tar", _tar(entries))
    with pytest.raises(ContextError, match=message):
        run(root, Step(sources=("a.tar",), dest="/opt/", is_add=True), tmp_path / "out")


def test_archive_symlinks_resolve_inside_the_destination(tmp_path: Path) -> None:
    name = f"pybuild-test-{uuid.uuid4().hex}"
    root = tmp_path / "ctx"
    write(root, "a.tar", _tar([("l", "symlink", "/etc"), (f"l/{name}", "file", "owned")]))
    run(root, Step(sources=("a.tar",), dest="/opt/", is_add=True), tmp_path / "out")
    assert tree(tmp_path / "out") == {
        "opt": "dir",
        "opt/l": "-> /etc",
        "opt/etc": "dir",
        f"opt/etc/{name}": "owned",
    }
    assert not os.path.exists(f"/etc/{name}")
