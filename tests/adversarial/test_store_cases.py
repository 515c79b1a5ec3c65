"""Checklist cases 34, 35, 37 and 38 (docs/SECURITY.md section 3, Concurrency): many builds on
one store, prune during builds, a damaged cache record and a damaged layer blob, all through the
real CLI against a real ``docker-registry`` on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from advkit import Result, assert_clean_error, assert_store_consistent, run_pybuild
from enginekit import BUILD_TIMEOUT, Builder, write_context
from regserver import FaultProxy, RegistryServer
from storefaults import (
    BASE,
    Builds,
    blob_gets,
    counting_proxy,
    image_blobs,
    pybuild,
    start_registry,
    step_cached,
)

from builder.store.paths import CACHE, CORRUPT, blob_path

pytestmark = pytest.mark.integration

CONCURRENT = 20


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("adv-store"))
    yield server
    server.stop()


@pytest.fixture
def proxy(registry: RegistryServer) -> Iterator[FaultProxy]:
    """The registry behind a proxy that logs every request (the fetch counter)."""
    yield from counting_proxy(registry)


def test_case_34_twenty_builds_at_once_agree_and_fetch_each_blob_once(
    proxy: FaultProxy, tmp_path: Path
) -> None:
    store = tmp_path / "store"  # empty: every build wants the base image from the registry
    base = f"{proxy.host}/{BASE}"
    run = "RUN echo concurrent > /built && sleep 1"
    context = tmp_path / "ctx"
    write_context(context, {"Dockerfile": f"FROM {base}\n{run}\nCOPY f /f\n", "f": "payload\n"})

    began = time.monotonic()
    builds = Builds.start(store, tmp_path, [context] * CONCURRENT)
    finished = builds.wait(timeout=CONCURRENT * BUILD_TIMEOUT)
    wall = time.monotonic() - began

    failed = [f.stderr for f in finished if f.returncode != 0]
    assert failed == []
    assert len({f.image_id for f in finished}) == 1, [f.image_id for f in finished]
    # One build ran the step; the others waited for it and took its cache record.
    assert sum(not step_cached(f.stderr, run) for f in finished) == 1
    gets = blob_gets(proxy)
    assert set(gets) == image_blobs(store, base)
    assert set(gets.values()) == {1}, gets
    fetched = ", ".join(f"{d.hex[:12]}: {n}" for d, n in gets.items())
    print(f"case 34: {CONCURRENT} builds in {wall:.1f}s; blob GETs {fetched}")
    assert_store_consistent(store)
    again = Builds.start(store, tmp_path, [context]).wait(timeout=BUILD_TIMEOUT)
    assert [f.image_id for f in again] == [finished[0].image_id], again[0].stderr


def _assert_prune_ok_or_waited(result: Result) -> None:
    """A prune either ran, or gave up waiting for the builds' store lease with one line."""
    if result.returncode != 0:
        line = assert_clean_error(result, must_name="store.lock")
        assert "timed out" in line


def test_case_35_prune_during_builds_never_removes_what_a_build_uses(
    proxy: FaultProxy, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    base = f"{proxy.host}/{BASE}"
    contexts = []
    for n in range(6):
        context = tmp_path / f"ctx{n}"
        write_context(
            context,
            {
                "Dockerfile": f"FROM {base}\nRUN echo {n} > /n && sleep 1\nCOPY f /f\n",
                "f": f"file {n}\n",
            },
        )
        contexts.append(context)
    prunes: list[Result] = []
    stop = threading.Event()

    def prune_loop() -> None:
        while not stop.is_set():
            prunes.append(run_pybuild(["prune", "-f"], store_root=store, cwd=tmp_path))

    pruner = threading.Thread(target=prune_loop)
    pruner.start()
    try:
        builds = Builds.start(store, tmp_path, contexts, pause=1.0)
        finished = builds.wait(timeout=len(contexts) * BUILD_TIMEOUT)
    finally:
        stop.set()
        pruner.join()

    assert [f.stderr for f in finished if f.returncode != 0] == []
    assert prunes, "no prune ran during the builds"
    for result in prunes:
        _assert_prune_ok_or_waited(result)
    waited = sum(r.returncode != 0 for r in prunes)
    print(f"case 35: {len(prunes)} prunes during the builds, {waited} gave up waiting")
    last = run_pybuild(["prune", "-f"], store_root=store, cwd=tmp_path)
    assert last.returncode == 0, last.stderr
    # every image built is whole after all those prunes (and runs)
    for n, done in enumerate(finished):
        ran = run_pybuild(
            ["run", "--rm", done.image_id, "cat", "/n"], store_root=store, cwd=tmp_path
        )
        assert (ran.returncode, ran.stdout) == (0, f"{n}\n"), ran.stderr
    assert_store_consistent(store)


def test_case_37_truncated_cache_record_is_set_aside_and_missed(
    pb: Builder, tmp_path: Path
) -> None:
    cache = pb.store_root / CACHE
    before = set(cache.glob("*.json"))
    run = f"RUN echo cache-record-{tmp_path.name} > /r"
    dockerfile = f"FROM busybox\n{run}\n"
    pb.build(dockerfile)
    records = sorted(set(cache.glob("*.json")) - before)
    assert records, "the build wrote no cache record"
    truncated = {}
    for record in records:
        with record.open("r+b") as f:
            f.truncate(100)
        truncated[record] = record.read_bytes()

    second = pb.build(dockerfile)
    assert not step_cached(second.stderr, run)  # a miss: the step ran again
    warnings = [line for line in second.stderr.splitlines() if "is corrupt" in line]
    assert len(warnings) == len(records), second.stderr
    for record in records:
        assert f"cache record {record} is corrupt" in second.stderr
        assert record.with_name(record.name + ".bak").read_bytes() == truncated[record]
        assert record.stat().st_size > 100  # written anew by the step that ran again
    assert_store_consistent(pb.store_root)


def test_case_38_flipped_byte_in_a_layer_is_quarantined_and_repulled(
    proxy: FaultProxy, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    base = f"{proxy.host}/{BASE}"
    pybuild(store, "pull", base)
    layer = next(
        d for d in image_blobs(store, base) if blob_path(store, d.hex).stat().st_size > 10000
    )
    path = blob_path(store, layer.hex)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    path.chmod(0o444)

    checked = run_pybuild(["fsck"], store_root=store, cwd=tmp_path)
    assert checked.returncode == 1
    assert f"corrupt: {layer}: content does not match its name" in checked.stdout

    context = tmp_path / "ctx"
    write_context(context, {"Dockerfile": f"FROM {base}\nRUN echo repaired > /r\n"})
    failed = run_pybuild(["build", "-t", "adv-38", str(context)], store_root=store, cwd=tmp_path)
    line = assert_clean_error(failed, must_name=str(layer))
    assert "blob corrupt" in line
    assert not path.exists()
    assert [p.name.split(".")[0] for p in (store / CORRUPT).iterdir()] == [layer.hex]
    missing = run_pybuild(["fsck"], store_root=store, cwd=tmp_path)
    assert missing.returncode == 1
    assert f"missing: {layer}" in missing.stdout

    pybuild(store, "pull", base)
    assert blob_gets(proxy)[layer] == 2  # fetched again
    rebuilt = run_pybuild(["build", "-t", "adv-38", str(context)], store_root=store, cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert_store_consistent(store)
