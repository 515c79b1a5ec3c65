"""Checklist case 36 (docs/SECURITY.md section 3, Concurrency): cache mounts used by builds running
at once. ``sharing=locked`` lets one step at a time in, ``sharing=private`` gives each step its
own directory, and ``sharing=shared`` (many writers at once) leaves the store sound."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from advkit import assert_store_consistent, run_pybuild
from enginekit import BUILD_TIMEOUT, Builder, write_context
from storefaults import Builds

pytestmark = pytest.mark.integration

BUILDS = 3


def _contexts(tmp_path: Path, name: str, runs: list[str]) -> list[Path]:
    contexts = []
    for n, run in enumerate(runs):
        context = tmp_path / f"{name}{n}"
        write_context(context, {"Dockerfile": f"FROM busybox\n{run}\n"})
        contexts.append(context)
    return contexts


def _run_all(pb: Builder, tmp_path: Path, name: str, runs: list[str]) -> list[str]:
    """Build one Dockerfile per RUN line, all at once; the image IDs."""
    contexts = _contexts(tmp_path, name, runs)
    tag = f"adv36-{name}-{uuid.uuid4().hex[:8]}"
    finished = Builds.start(pb.store_root, tmp_path, contexts, tag=tag).wait(
        timeout=len(runs) * BUILD_TIMEOUT
    )
    assert [f.stderr for f in finished if f.returncode != 0] == []
    return [f.image_id for f in finished]


def _cat(pb: Builder, tmp_path: Path, image: str, path: str) -> str:
    ran = run_pybuild(["run", "--rm", image, "cat", path], store_root=pb.store_root, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def test_case_36_cache_mounts_locked_serialises_private_isolates_shared_is_sound(
    pb: Builder, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex[:12]

    # locked: a step that finds another inside the cache directory fails the build
    locked = f"--mount=type=cache,target=/c,id=adv36-locked-{token},sharing=locked"
    runs = [
        f"RUN {locked} test ! -e /c/busy && touch /c/busy && sleep 3"
        f" && echo {n} >> /c/order && rm /c/busy && cp /c/order /order"
        for n in range(BUILDS)
    ]
    images = _run_all(pb, tmp_path, "locked", runs)
    orders = [_cat(pb, tmp_path, image, "/order").split() for image in images]
    # one after another: each step saw the marks of the steps before it, never a half state
    assert sorted(len(o) for o in orders) == list(range(1, BUILDS + 1)), orders
    assert sorted(max(orders, key=len)) == [str(n) for n in range(BUILDS)]

    # private: the steps meet (each waits for the others on a shared mount), so they run at the
    # same time; each sees its own file only in its private cache directory
    private = f"--mount=type=cache,target=/c,id=adv36-private-{token},sharing=private"
    meet = f"--mount=type=cache,target=/meet,id=adv36-meet-{token},sharing=shared"
    wait = (
        f"i=0; while [ $(ls /meet | wc -l) -lt {BUILDS} ] && [ $i -lt 600 ];"
        " do sleep 0.1; i=$((i+1)); done"
    )
    runs = [
        f"RUN {private} {meet} touch /c/mine-{n} /meet/{n} && {wait} && ls /c > /seen"
        for n in range(BUILDS)
    ]
    images = _run_all(pb, tmp_path, "private", runs)
    for n, image in enumerate(images):
        assert _cat(pb, tmp_path, image, "/seen").split() == [f"mine-{n}"]

    # shared: every step writes into one directory at once; the store stays consistent
    shared = f"--mount=type=cache,target=/c,id=adv36-shared-{token},sharing=shared"
    runs = [
        f"RUN {shared} for i in $(seq 200); do echo {n}-$i >> /c/log; done && wc -l < /c/log > /n"
        for n in range(BUILDS)
    ]
    images = _run_all(pb, tmp_path, "shared", runs)
    assert max(int(_cat(pb, tmp_path, image, "/n")) for image in images) == BUILDS * 200
    assert_store_consistent(pb.store_root)
