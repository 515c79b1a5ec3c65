"""Layer writing throughput and memory: pybuild's writer vs ``tar | gzip`` and ``tar | pigz``.

Generates a tree of 10,000 small files plus a few 100 MB files (about 1 GB by default; the
content is half random, half text-like, so it compresses roughly like real images), then
builds a gzip layer from it three ways, each in its own child process:

- pybuild: ``builder.oci.layer_write.write_layer`` (sorted entries, ISA-L gzip, one pass that
  also computes the diff_id and blob digest);
- ``tar -c | gzip`` (GNU tar, gzip -6);
- ``tar -c | pigz`` (parallel gzip on every core).

For each it prints MB/s of file content, the blob size, and the peak RSS of the biggest
process, read with ``resource.getrusage(RUSAGE_CHILDREN)`` in a wrapper process so that neither
the generator nor this script counts. Targets: pybuild faster than ``tar | gzip`` and under
100 MB of RSS.

    .venv/bin/python bench/layers.py [--size-mb 1000] [--dir /var/tmp] [--keep] [--check]
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MB = 1_000_000
MIB = 1 << 20
SMALL_FILES = 10_000
LARGE_FILE_MB = 100
RSS_TARGET_MB = 100

# Runs a shell command and prints the peak RSS (KiB) of its biggest descendant process.
_WRAPPER = """
import resource, subprocess, sys
subprocess.run(sys.argv[1], shell=True, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""

_PYBUILD = """
import sys
from builder.oci.layer_write import write_layer
with open(sys.argv[2], "wb", buffering=1 << 20) as out:
    result = write_layer(sys.argv[1], out)
print(result.diff_id, result.digest, result.uncompressed_size)
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    name: str
    seconds: float
    blob_bytes: int
    rss_kib: int

    def mb_per_s(self, content: int) -> float:
        return content / MB / self.seconds


def _text_block(rng: random.Random) -> bytes:
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(2000)
    ]
    out = bytearray()
    while len(out) < MIB:
        out += (" ".join(rng.choices(words, k=16)) + "\n").encode()
    return bytes(out[:MIB])


def _chunk(rng: random.Random, text: bytes, size: int) -> bytes:
    """Half random bytes, half text: compresses to about 55-60% with gzip."""
    half = size // 2
    start = rng.randrange(0, len(text) - (size - half)) if size - half < len(text) else 0
    return rng.randbytes(half) + text[start : start + size - half]


def generate(root: Path, size_mb: int, seed: int = 7) -> tuple[int, int]:
    """Write the tree; returns (files, content bytes)."""
    rng = random.Random(seed)
    text = _text_block(rng)
    total = size_mb * MB
    small_budget = min(total // 10, SMALL_FILES * 8192)
    small_avg = max(small_budget // SMALL_FILES, 1)
    written = 0
    files = 0
    for i in range(SMALL_FILES):
        directory = root / f"small/d{i // 100:03d}"
        if i % 100 == 0:
            directory.mkdir(parents=True)
        size = rng.randint(1, 2 * small_avg)
        (directory / f"f{i:05d}.txt").write_bytes(_chunk(rng, text, size))
        written += size
        files += 1
    remaining = max(total - written, 0)
    count = max(1, round(remaining / (LARGE_FILE_MB * MB))) if remaining else 0
    (root / "large").mkdir()
    for i in range(count):
        size = remaining // count
        with open(root / "large" / f"blob{i}.bin", "wb") as f:
            left = size
            while left:
                n = min(left, 4 * MIB)
                f.write(_chunk(rng, text, n))
                left -= n
        written += size
        files += 1
    return files, written


def measure(name: str, command: str, output: Path) -> Result:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _WRAPPER, command],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr}")
    rss = int(proc.stdout.split()[-1])
    return Result(name=name, seconds=seconds, blob_bytes=output.stat().st_size, rss_kib=rss)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1000, help="tree size (default 1000)")
    parser.add_argument("--dir", default="/var/tmp", help="where the data goes (default /var/tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pybuild-bench-layers-", dir=args.dir))
    tree = work / "tree"
    tree.mkdir()
    try:
        t0 = time.perf_counter()
        files, content = generate(tree, args.size_mb)
        print(
            f"tree: {files} files, {content / MB:.0f} MB of content in {tree}"
            f" (generated in {time.perf_counter() - t0:.1f}s)"
        )
        py = shlex.quote(sys.executable)
        runs: list[tuple[str, str, Path]] = [
            (
                "pybuild write_layer (gzip)",
                f"{py} -c {shlex.quote(_PYBUILD)} {tree} {work / 'pybuild.tar.gz'}",
                work / "pybuild.tar.gz",
            ),
            (
                "tar -c | gzip",
                f"tar -C {tree} -cf - . | gzip > {work / 'gzip.tar.gz'}",
                work / "gzip.tar.gz",
            ),
        ]
        if shutil.which("pigz"):
            runs.append(
                (
                    "tar -c | pigz",
                    f"tar -C {tree} -cf - . | pigz > {work / 'pigz.tar.gz'}",
                    work / "pigz.tar.gz",
                )
            )
        else:
            print("pigz is not installed (scripts/setup-system.sh installs it): skipped")
        # warm the page cache so the first contender is not the only one reading the disk
        subprocess.run(f"tar -C {tree} -cf - . | cat > /dev/null", shell=True, check=True)
        results = [measure(name, cmd, out) for name, cmd, out in runs]
        print()
        print(f"{'':28} {'MB/s':>8} {'seconds':>8} {'blob MB':>8} {'ratio':>6} {'peak RSS':>9}")
        for r in results:
            print(
                f"{r.name:28} {r.mb_per_s(content):8.1f} {r.seconds:8.2f}"
                f" {r.blob_bytes / MB:8.1f} {r.blob_bytes / content:6.1%}"
                f" {r.rss_kib / 1024:7.1f}MB"
            )
        ours = results[0]
        print()
        for other in results[1:]:
            print(
                f"pybuild vs {other.name}: {other.seconds / ours.seconds:.2f}x the speed,"
                f" {ours.rss_kib / other.rss_kib:.1f}x the peak RSS,"
                f" {ours.blob_bytes / other.blob_bytes:.3f}x the blob size"
            )
        faster = ours.seconds < results[1].seconds
        small = ours.rss_kib / 1024 < RSS_TARGET_MB
        print()
        print(f"target: faster than tar | gzip ........ {'met' if faster else 'MISSED'}")
        print(f"target: peak RSS < {RSS_TARGET_MB} MB ............. {'met' if small else 'MISSED'}")
        print(json.dumps({r.name: round(r.mb_per_s(content), 1) for r in results}))
        return 1 if args.check and not (faster and small) else 0
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
