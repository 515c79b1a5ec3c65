"""Registry throughput: pybuild push/pull vs ``skopeo copy`` of the same image, same machine.

Generates an image of about 200 MB (several gzip layers of random-ish file data, written with
the store's layer writer), starts a local ``docker-registry`` for each measurement (so no run
finds blobs left by another), and times:

* pybuild push  (store -> registry)        vs  skopeo copy oci:<store>:<name> docker://...
* pybuild pull  (registry -> fresh store)  vs  skopeo copy docker://... oci:<dir>:<name>

It prints seconds (best of ``--runs``), throughput and pybuild/skopeo ratios (< 1: pybuild is
faster).

    .venv/bin/python bench/registry.py [--layers 4] [--layer-mb 56] [--runs 2]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "integration" / "registry"))

from regserver import (  # noqa: E402
    REGISTRY_BIN,
    SKOPEO_BIN,
    RegistryServer,
    ToolMissingError,
    require_tool,
)

from builder.oci import mutate  # noqa: E402
from builder.oci.image import EMPTY, ImageValue  # noqa: E402
from builder.oci.types import ContainerConfig, History  # noqa: E402
from builder.registry.client import RegistryClient  # noqa: E402
from builder.registry.remote import pull_image, push_image  # noqa: E402
from builder.store import Store  # noqa: E402

NAME = "docker.io/library/bench:v1"
FILE_SIZE = 4 << 20


def write_files(directory: Path, size: int, rng: random.Random) -> None:
    """``size`` bytes of files: 7/8 random (incompressible), 1/8 repetitive text."""
    directory.mkdir(parents=True)
    made = 0
    i = 0
    while made < size:
        n = min(FILE_SIZE, size - made)
        random_part = n * 7 // 8
        text = (b"pybuild registry benchmark line %d\n" % i) * (n // 30 + 1)
        (directory / f"f{i:04d}.bin").write_bytes(
            rng.randbytes(random_part) + text[: n - random_part]
        )
        made += n
        i += 1


def build_image(store: Store, work: Path, layers: int, layer_bytes: int) -> ImageValue:
    rng = random.Random(7)
    image: ImageValue = EMPTY
    with store.lease():
        for n in range(layers):
            source = work / f"layer{n}"
            write_files(source / f"data{n}", layer_bytes, rng)
            layer = store.write_layer(source, source_date_epoch=0)
            shutil.rmtree(source)
            image = mutate.append_layer(image, layer, history=History(created_by=f"layer {n}"))
        image = mutate.with_config(image, ContainerConfig(cmd=("sh",)))
        store.write_image(image, (NAME,))
    return image


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def skopeo(*args: str) -> None:
    proc = subprocess.run(
        [SKOPEO_BIN, "--insecure-policy", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"skopeo failed: {proc.stderr.strip()}")


def one_round(store: Store, work: Path, n: int) -> dict[str, float]:
    times: dict[str, float] = {}
    # pybuild push, then pybuild pull of what it pushed
    registry = RegistryServer(work / f"reg-pybuild-{n}").start()
    try:
        ref = f"{registry.host}/bench/img:v1"
        store.tag(NAME, ref)
        with RegistryClient() as client:
            times["pybuild push"] = timed(lambda: push_image(store, ref, client=client))
        target = Store.open(work / f"pulled-{n}")
        with RegistryClient() as client:
            times["pybuild pull"] = timed(lambda: pull_image(target, ref, client=client))
        shutil.rmtree(target.root)
        store.untag(ref)
    finally:
        registry.stop()
        shutil.rmtree(registry.workdir, ignore_errors=True)
    # skopeo copy both ways through a fresh registry
    registry = RegistryServer(work / f"reg-skopeo-{n}").start()
    try:
        dest = f"docker://{registry.host}/bench/img:v1"
        times["skopeo push"] = timed(
            lambda: skopeo(
                "copy",
                "--dest-tls-verify=false",
                "--preserve-digests",
                f"oci:{store.root}:{NAME}",
                dest,
            )
        )
        layout = work / f"skopeo-layout-{n}"
        times["skopeo pull"] = timed(
            lambda: skopeo("copy", "--src-tls-verify=false", dest, f"oci:{layout}:bench")
        )
        shutil.rmtree(layout)
    finally:
        registry.stop()
        shutil.rmtree(registry.workdir, ignore_errors=True)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--layer-mb", type=int, default=56, help="file data per layer (MB)")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    try:
        require_tool(SKOPEO_BIN, "skopeo")
        require_tool(REGISTRY_BIN, "docker-registry")
    except ToolMissingError as exc:
        print(f"registry: skipped, {exc}")
        return 0
    with tempfile.TemporaryDirectory(prefix="pybuild-bench-") as tmp:
        work = Path(tmp)
        store = Store.open(work / "store")
        started = time.perf_counter()
        image = build_image(store, work, args.layers, args.layer_mb * 1_000_000)
        total = sum(layer.descriptor.size for layer in image.layers) + len(image.raw_config)
        print(
            f"image: {len(image.layers)} layers, {total / 1e6:.1f} MB compressed"
            f" (built in {time.perf_counter() - started:.1f}s), {os.cpu_count()} CPUs"
        )
        best: dict[str, float] = {}
        for n in range(args.runs):
            for key, seconds in one_round(store, work, n).items():
                best[key] = min(best.get(key, seconds), seconds)
        print(f"{'':14}{'seconds':>9}{'MB/s':>9}")
        for key in ("pybuild push", "skopeo push", "pybuild pull", "skopeo pull"):
            print(f"{key:14}{best[key]:9.2f}{total / 1e6 / best[key]:9.0f}")
        for op in ("push", "pull"):
            ratio = best[f"pybuild {op}"] / best[f"skopeo {op}"]
            verdict = "faster" if ratio < 1 else "slower"
            print(f"{op}: pybuild/skopeo time ratio {ratio:.2f} (pybuild {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
