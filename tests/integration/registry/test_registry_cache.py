"""``--cache-to`` / ``--cache-from`` round trips between empty stores, through a real
docker-registry on 127.0.0.1 and through an OCI layout directory.

Every RUN writes ``$RANDOM`` into its layer: a step that ran again would give another image ID,
so "same image ID" proves that no cached RUN was executed; the progress output shows each layer
step as ``CACHED`` too. The stores are copies of one store holding only busybox:latest.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from enginekit import Builder, Built, copy_store

from builder.digest import Digest
from builder.oci.cacheconfig import config_descriptor, decode
from builder.store import Store
from tests.integration.registry.regserver import RegistryServer

pytestmark = pytest.mark.integration

DOCKERFILE = """\
FROM busybox:latest AS build
COPY src.txt /src/
RUN cat /src/src.txt /src/src.txt > /built && echo "$RANDOM$RANDOM" > /random

FROM busybox:latest
COPY --from=build /built /app/built
RUN cp /app/built /app/copy && echo "$RANDOM$RANDOM" > /app/random
CMD ["cat", "/app/built"]
"""
FILES = {"src.txt": "source\n"}


def _store(seed: Path, tmp_path: Path, name: str) -> Builder:
    root = copy_store(seed, tmp_path / name)
    return Builder(store_root=root, workdir=tmp_path, busybox_history=1)


def _steps(built: Built) -> dict[str, bool]:
    """Layer step name (``[stage n/m] INSTR ...``) -> whether it was CACHED (plain progress)."""
    names: dict[str, str] = {}
    cached: dict[str, bool] = {}
    for line in built.stderr.splitlines():
        match = re.match(r"#(\d+) (.*)$", line)
        if not match:
            continue
        vertex, text = match.groups()
        if re.match(r"\[(\S+ )?\d+/\d+\] (RUN|COPY|ADD|WORKDIR)", text):
            names[vertex] = text
            cached[text] = False
        elif text == "CACHED" and vertex in names:
            cached[names[vertex]] = True
    return cached


def _blobs(root: Path) -> set[str]:
    return {p.name for p in (root / "blobs" / "sha256").iterdir()}


def _layers(built: Built) -> list[str]:
    return [layer.descriptor.digest.hex for layer in built.image.layers]


def test_registry_cache_round_trip_between_empty_stores(
    registry: RegistryServer, busybox_seed: Path, tmp_path: Path
) -> None:
    host = registry.url.removeprefix("http://")
    ref = f"{host}/cache/app:buildcache"
    one = _store(busybox_seed, tmp_path, "store-a")
    first = one.build(DOCKERFILE, FILES, args=["--cache-to", f"type=registry,ref={ref},mode=max"])
    assert not any(_steps(first).values())
    assert "exporting cache to registry" in first.stderr

    # an empty store: every step is CACHED, no RUN ran, the very same image
    two = _store(busybox_seed, tmp_path, "store-b")
    second = two.build(DOCKERFILE, FILES, args=["--cache-from", f"type=registry,ref={ref}"])
    steps = _steps(second)
    assert len(steps) == 4
    assert all(steps.values()), second.stderr
    assert second.image_id == first.image_id
    assert _layers(second) == _layers(first)
    assert second.files["/app/random"] == first.files["/app/random"]

    # mode=max exported the build stage too; a --target build fetches only its layers
    three = _store(busybox_seed, tmp_path, "store-c")
    staged = three.build(
        DOCKERFILE, FILES, args=["--cache-from", ref, "--target", "build"], context_name="ctx3"
    )
    assert all(_steps(staged).values())
    final_only = set(_layers(first)) - set(_layers(staged))
    assert final_only
    assert not final_only & _blobs(three.store_root)

    # a changed step and the steps after it run again; the others come from the cache
    changed = DOCKERFILE.replace('/app/random\nCMD ["cat", "/app/built"]', "/app/random2\n")
    four = _store(busybox_seed, tmp_path, "store-d")
    fourth = four.build(changed, FILES, args=["--cache-from", ref], context_name="ctx4")
    assert list(_steps(fourth).values()) == [True, True, True, False]

    # the registry holds BuildKit's cache manifest: an OCI index ending in the cache config
    index_ref = registry.storage / "docker/registry/v2/repositories/cache/app/_manifests/tags"
    link = (index_ref / "buildcache/current/link").read_text().strip()
    manifest = registry.blob_path(Digest.parse(link)).read_bytes()
    assert json.loads(manifest)["mediaType"] == "application/vnd.oci.image.index.v1+json"
    desc = config_descriptor(manifest, "cache")
    records = decode(registry.blob_path(desc.digest).read_bytes(), "cache config")
    assert len(records) == 5  # four steps, and COPY --from once more by its source key
    assert sum(r.chain is not None for r in records.values()) == 1
    assert {r.blob.digest.hex for r in records.values()} >= set(_layers(first)[1:])

    # lazily: store B hit the build stage's steps but needed none of their layers (COPY --from
    # hit by its source key), so it never fetched them
    stage_only = {r.blob.digest.hex for r in records.values()} - set(_layers(first))
    assert len(stage_only) == 2
    assert not stage_only & _blobs(two.store_root)


def test_mode_min_exports_only_the_image_steps(
    registry: RegistryServer, busybox_seed: Path, tmp_path: Path
) -> None:
    ref = f"{registry.url.removeprefix('http://')}/cache/min:latest"
    one = _store(busybox_seed, tmp_path, "store-a")
    files = {"src.txt": "min mode\n"}
    first = one.build(DOCKERFILE, files, args=["--cache-to", f"type=registry,ref={ref}"])
    two = _store(busybox_seed, tmp_path, "store-b")
    second = two.build(DOCKERFILE, files, args=["--cache-from", f"type=registry,ref={ref}"])
    # the build stage was not exported: it runs again (a new $RANDOM), but COPY --from is keyed
    # by the content it copies, which is the same, so the final stage's steps are cached
    assert list(_steps(second).values()) == [False, False, True, True]
    assert second.image_id == first.image_id


def test_local_cache_round_trip_with_zstd(busybox_seed: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache-dir"
    one = _store(busybox_seed, tmp_path, "store-a")
    files = {"src.txt": "local cache\n"}
    first = one.build(
        DOCKERFILE,
        files,
        args=["--cache-to", f"type=local,dest={cache},mode=max,compression=zstd"],
    )
    index = json.loads((cache / "index.json").read_text())
    assert (cache / "oci-layout").is_file()
    [entry] = index["manifests"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "latest"

    two = _store(busybox_seed, tmp_path, "store-b")
    second = two.build(DOCKERFILE, files, args=["--cache-from", f"type=local,src={cache}"])
    assert all(_steps(second).values())
    assert len(_steps(second)) == 4
    assert second.image_id == first.image_id  # same diff_ids, zstd blobs
    types = {layer.descriptor.media_type for layer in second.image.layers[1:]}
    assert types == {"application/vnd.oci.image.layer.v1.tar+zstd"}
    assert second.files == first.files
    manifest = (cache / "blobs" / "sha256" / Digest.parse(entry["digest"]).hex).read_bytes()
    desc = config_descriptor(manifest, "cache")
    records = decode((cache / "blobs" / "sha256" / desc.digest.hex).read_bytes(), "config")
    store = Store.open(two.store_root)
    assert len(records) == 5
    fetched = [key for key in records if store.cache.get(key) is not None]
    # the image's two layers (COPY --from hit by its source key, the RUN), not the stage's
    assert len(fetched) == 2


def test_bad_cache_specs_are_one_line_errors(busybox_seed: Path, tmp_path: Path) -> None:
    one = _store(busybox_seed, tmp_path, "store-a")
    for flag, value, message in (
        ("--cache-to", "type=s3,ref=x", "unsupported cache type 's3'"),
        ("--cache-to", "type=registry,ref=r/x,mode=all", "invalid mode 'all'"),
        ("--cache-to", "type=local", "dest= is required"),
        ("--cache-from", "type=local,dest=/x", "unknown attribute 'dest'"),
    ):
        built = one.build("FROM busybox:latest\n", {}, args=[flag, value], check=False)
        assert built.returncode != 0
        assert message in built.stderr
        assert "Traceback" not in built.stderr


def test_a_missing_cache_source_is_a_warning(busybox_seed: Path, tmp_path: Path) -> None:
    one = _store(busybox_seed, tmp_path, "store-a")
    missing = tmp_path / "no-cache-here"
    built = one.build(DOCKERFILE, FILES, args=["--cache-from", f"type=local,src={missing}"])
    assert f"cache {missing}: not found, nothing imported" in built.stderr
    assert not any(_steps(built).values())
