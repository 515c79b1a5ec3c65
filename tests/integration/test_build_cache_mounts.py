"""``RUN --mount=type=cache`` complete: ``from=``/``source=`` seed a new cache (resolved in the
stage's root), ``sharing=locked`` serialises two concurrent builds, ``private`` gives each
concurrent user its own directory, an ``id`` is never a path, and ``pybuild prune
--cache-mounts`` empties the area but keeps what a running build holds."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from enginekit import PYBUILD, Builder

from builder.engine.cachemounts import cache_name

pytestmark = pytest.mark.integration

FILL_100K = "head -c 100000 /dev/zero >"
WAIT = "i=0; until [ -e {path} ]; do i=$((i+1)); [ $i -lt 6000 ] || exit 9; sleep 0.1; done"


def _nonce() -> str:
    return os.urandom(6).hex()


def _start(pb: Builder, ctx: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PYBUILD, "build", "-t", pb.new_tag(), "--progress=plain", str(ctx)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=pb.environ(),
        cwd=pb.workdir,
    )


def _finish(proc: subprocess.Popen[str]) -> None:
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err


def _run_both(pb: Builder, dockerfile: Callable[[str], str]) -> None:
    """Build ``dockerfile("a")`` and ``dockerfile("b")`` at once; both must succeed."""
    procs = []
    for name in ("a", "b"):
        ctx = pb.context(name=f"ctx-{name}")
        (ctx / "Dockerfile").write_text(dockerfile(name))
        procs.append(_start(pb, ctx))
    for proc in procs:
        _finish(proc)


def _cachemounts(pb: Builder) -> Path:
    return pb.store_root / "cachemounts"


def test_from_stage_and_image_seed_a_new_cache_in_root(pb: Builder) -> None:
    n = _nonce()
    host_dir = pb.workdir / "hostside"  # the same path inside the stage holds other content
    host_dir.mkdir()
    (host_dir / "who").write_text("host\n")
    up = "../" * 12
    dockerfile = (
        "FROM busybox AS seed\n"
        f"RUN mkdir -p /seed/sub {host_dir} && echo seeded > /seed/sub/f"
        f" && chown -R 7:8 /seed/sub && echo stage > {host_dir}/who"
        f" && ln -s {up}{str(host_dir).lstrip('/')} /esc\n"
        "FROM busybox\n"
        f"RUN --mount=type=cache,id={n},from=seed,source=/seed/sub,target=/c"
        " cat /c/f > /out && stat -c '%u %g' /c/f > /own && echo more >> /c/f\n"
        f"RUN --mount=type=cache,id={n},from=seed,source=/seed/sub,target=/c cat /c/f > /out2\n"
        f"RUN --mount=type=cache,id={n}e,from=seed,source=/esc,target=/c cat /c/who > /esc\n"
        f"RUN --mount=type=cache,id={n}i,from=busybox,source=/etc,target=/c"
        " grep -c ^root: /c/passwd > /img\n"
    )
    files = pb.build(dockerfile).files
    assert files["/out"].text == "seeded\n"
    assert files["/own"].text == "7 8\n"
    assert files["/out2"].text == "seeded\nmore\n"  # the cache persists: seeded only once
    assert files["/esc"].text == "stage\n"  # the symlink resolved inside the stage
    assert files["/img"].text == "1\n"
    assert (host_dir / "who").read_text() == "host\n"
    # a missing source: a stage's fails computing the step's cache key (as a bind mount's
    # does), an image's when the cache is created
    bad = pb.build(
        f"FROM busybox AS seed\nFROM busybox\n"
        f"RUN --mount=type=cache,id={n}m,from=seed,source=/nope,target=/c true\n",
        check=False,
    )
    assert bad.error_line().endswith('"/nope": not found'), bad.stderr
    bad = pb.build(
        f"FROM busybox\nRUN --mount=type=cache,id={n}m,from=busybox,source=/nope,target=/c true\n",
        check=False,
    )
    line = bad.error_line()
    assert line.startswith("ERROR: Dockerfile:2"), line
    assert line.endswith("cache mount source '/nope' not found"), line


def _outside(top: Path, needle: str, depth: int) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        if dirpath.count(os.sep) - str(top).count(os.sep) >= depth:
            dirnames[:] = []
        found += [os.path.join(dirpath, x) for x in (*dirnames, *filenames) if needle in x]
    return found


def test_an_id_is_never_a_path(pb: Builder) -> None:
    n = _nonce()
    ids = (f"../../escape{n}", f"/abs{n}", f"../../../../../../../tmp/escape{n}")
    steps = "".join(
        f"RUN --mount=type=cache,id={i},target=/c touch /c/here && ls /c > /seen{k}\n"
        for k, i in enumerate(ids)
    )
    files = pb.build(f"FROM busybox\n{steps}").files
    assert [files[f"/seen{k}"].text for k in range(len(ids))] == ["here\n"] * len(ids)
    names = {p.name for p in _cachemounts(pb).iterdir()}
    for cache_id in ids:
        assert cache_name("", cache_id) in names
    assert all(re.fullmatch(r"[0-9a-f]{64}(-\d+)?(\.lock)?", x) for x in names), names
    for top, depth in ((pb.store_root.parent, 6), (Path("/tmp"), 1), (Path("/"), 1)):
        assert _outside(top, n, depth) == [], top


def test_locked_serialises_two_concurrent_builds(pb: Builder) -> None:
    n = _nonce()
    # both builds reach the locked step together: each waits for the other's "ready"
    _run_both(
        pb,
        lambda name: (
            "FROM busybox\n"
            f"RUN --mount=type=cache,id=sync{n},target=/s touch /s/ready-{name}"
            f" && {WAIT.format(path='/s/ready-a')} && {WAIT.format(path='/s/ready-b')}\n"
            f"RUN --mount=type=cache,id=log{n},target=/l,sharing=locked"
            f" echo start-{name} >> /l/log && sleep 3 && echo end-{name} >> /l/log\n"
        ),
    )
    log = (_cachemounts(pb) / cache_name("", f"log{n}") / "log").read_text().split()
    assert sorted(log) == ["end-a", "end-b", "start-a", "start-b"], log
    first = log[0].removeprefix("start-")
    second = "b" if first == "a" else "a"
    assert log == [f"start-{first}", f"end-{first}", f"start-{second}", f"end-{second}"]


def test_private_gives_each_concurrent_user_its_own_directory(pb: Builder) -> None:
    n = _nonce()
    # each build writes its mark, then waits (in the step) until the other arrived too
    _run_both(
        pb,
        lambda name: (
            "FROM busybox\n"
            f"RUN --mount=type=cache,id=p{n},target=/p,sharing=private"
            f" --mount=type=cache,id=sync{n},target=/s"
            f" touch /p/mine-{name} /s/in-{name}"
            f" && {WAIT.format(path='/s/in-a')} && {WAIT.format(path='/s/in-b')}"
            f" && ls /p > /s/seen-{name}\n"
        ),
    )
    sync = _cachemounts(pb) / cache_name("", f"sync{n}")
    assert (sync / "seen-a").read_text() == "mine-a\n"
    assert (sync / "seen-b").read_text() == "mine-b\n"
    name = cache_name("", f"p{n}")
    assert {p.name for p in _cachemounts(pb).glob(f"{name}*") if p.is_dir()} == {
        name,
        f"{name}-1",
    }


@pytest.fixture
def held(pb: Builder) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    """A build that is running a step holding a locked cache: (its id, the process, the
    file that lets it finish)."""
    n = _nonce()
    ctx = pb.context(name="ctx-held")
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        f"RUN --mount=type=cache,id=hold{n},target=/h,sharing=locked"
        f" --mount=type=cache,id=sig{n},target=/s"
        f" head -c 4096 /dev/zero > /h/data && touch /s/started && {WAIT.format(path='/s/go')}\n"
    )
    signal = _cachemounts(pb) / cache_name("", f"sig{n}")
    proc = _start(pb, ctx)
    try:
        for _ in range(6000):  # the build is running its step once "started" exists
            if (signal / "started").exists():
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        yield f"hold{n}", proc, signal / "go"
    finally:
        if proc.returncode is None:
            (signal / "go").touch()
            proc.communicate(timeout=600)


def test_prune_cache_mounts_keeps_what_a_build_holds(
    pb: Builder, held: tuple[str, subprocess.Popen[str], Path]
) -> None:
    cache_id, proc, go = held
    n = _nonce()
    pb.build(f"FROM busybox\nRUN --mount=type=cache,id=free{n},target=/f {FILL_100K} /f/z\n")
    free = cache_name("", f"free{n}")
    busy = cache_name("", cache_id)
    assert (_cachemounts(pb) / free / "z").exists()
    pruned = pb.cli("prune", "-f", "--cache-mounts")
    assert pruned.returncode == 0, pruned.stderr
    assert "Deleted cache mounts:" in pruned.stdout
    assert free in pruned.stdout.split()
    assert f"cache mount {busy} is in use by a running build: kept" in pruned.stderr
    reclaimed = re.search(r"Total reclaimed space: ([0-9.]+)kB", pruned.stdout)
    assert reclaimed is not None, pruned.stdout
    assert float(reclaimed.group(1)) >= 100  # the free cache's 100000 bytes
    assert not (_cachemounts(pb) / free).exists()
    assert (_cachemounts(pb) / busy / "data").exists()
    go.touch()
    _finish(proc)
    again = pb.cli("prune", "-f", "--cache-mounts")
    assert busy in again.stdout.split(), again.stdout
    assert list(_cachemounts(pb).iterdir()) == []
