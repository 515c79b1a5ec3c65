"""Layer determinism: the same tree gives byte-identical layers whatever the creation order
and mtimes (with a SOURCE_DATE_EPOCH clamp); write -> apply -> write is a fixed point."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.oci.layer import apply_layer, write_layer
from builder.oci.types import Compression

EPOCH = 1_000_000
NAMES = st.sampled_from(["a", "b", "c", "d-1", "e.txt", "Z", "x y", "é"])

# A spec: relative path -> ("file", bytes, mode) | ("dir", mode) | ("symlink", target)
#         | ("hardlink", path-of-a-file)
Spec = dict[str, tuple[object, ...]]


@st.composite
def trees(draw: st.DrawFn) -> Spec:
    spec: Spec = {}
    dirs = [""]
    for _ in range(draw(st.integers(1, 12))):
        parent = draw(st.sampled_from(dirs))
        path = f"{parent}/{draw(NAMES)}".lstrip("/")
        if path in spec or any(path.startswith(p + "/") for p in spec if spec[p][0] != "dir"):
            continue
        kind = draw(st.sampled_from(["file", "file", "dir", "symlink", "hardlink"]))
        files = [p for p, v in spec.items() if v[0] == "file"]
        if kind == "hardlink" and not files:
            kind = "file"
        if kind == "file":
            mode = draw(st.sampled_from([0o644, 0o600, 0o755, 0o4755]))
            spec[path] = ("file", draw(st.binary(max_size=3000)), mode)
        elif kind == "dir":
            spec[path] = ("dir", draw(st.sampled_from([0o755, 0o700, 0o1777])))
            dirs.append(path)
        elif kind == "symlink":
            spec[path] = ("symlink", draw(st.sampled_from(["a", "../b", "/etc/passwd", "x/y"])))
        else:
            spec[path] = ("hardlink", draw(st.sampled_from(files)))
    return spec


def _create(root: Path, spec: Spec, order: list[str], mtimes: dict[str, int]) -> None:
    root.mkdir()
    pending = list(order)
    # Parents must exist first; otherwise follow the drawn order.
    while pending:
        for path in list(pending):
            parent = path.rpartition("/")[0]
            if parent and not (root / parent).is_dir():
                continue
            kind = spec[path][0]
            target = spec[path][1]
            if kind == "hardlink" and not (root / str(target)).exists():
                continue
            pending.remove(path)
            full = root / path
            if kind == "file":
                full.write_bytes(spec[path][1])  # type: ignore[arg-type]
                full.chmod(spec[path][2])  # type: ignore[arg-type]
            elif kind == "dir":
                full.mkdir()
                full.chmod(spec[path][1])  # type: ignore[arg-type]
            elif kind == "symlink":
                full.symlink_to(str(target))
            else:
                os.link(root / str(target), full)
    for path in sorted(spec, key=lambda p: -p.count("/")):
        t = mtimes.get(path, EPOCH)
        os.utime(root / path, (t, t), follow_symlinks=False)


def _layer(root: Path) -> bytes:
    out = io.BytesIO()
    write_layer(root, out, compression=Compression.GZIP, source_date_epoch=EPOCH)
    return out.getvalue()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=trees(), data=st.data())
def test_any_order_any_mtime_same_bytes(spec: Spec, data: st.DataObject) -> None:
    orders = [data.draw(st.permutations(sorted(spec))) for _ in range(2)]
    mtimes = [
        data.draw(st.dictionaries(st.sampled_from(sorted(spec)), st.integers(EPOCH, 2**33)))
        for _ in range(2)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        one, two = Path(tmp) / "one", Path(tmp) / "two"
        _create(one, spec, list(orders[0]), mtimes[0])
        _create(two, spec, list(orders[1]), mtimes[1])
        assert _layer(one) == _layer(two)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=trees())
def test_write_apply_write_is_a_fixed_point(spec: Spec) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "src", Path(tmp) / "dst"
        _create(src, spec, sorted(spec), {})
        first = _layer(src)
        dst.mkdir()
        apply_layer(io.BytesIO(first), dst)
        assert _layer(dst) == first
