"""What the private network costs a build: RUN steps on ``default`` vs ``--network host``.

Builds a Dockerfile of ``--steps`` small RUN steps (``--no-cache``, so every step runs) on the
default network (one namespace with slirp4netns per build, shared by its steps), with
``--network none`` and with ``--network host --allow network.host``, ``--runs`` times each in
turn, and prints the median build time and the per-step difference against host networking.
It also times starting and stopping one private namespace alone.

    .venv/bin/python bench/network.py [--steps 20] [--runs 5] [--root DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYBUILD = str(Path(sys.executable).with_name("pybuild"))
MODES = {
    "default": ["--network", "default"],
    "none": ["--network", "none"],
    "host": ["--network", "host", "--allow", "network.host"],
}


def _ensure_busybox(root: Path) -> None:
    env = {**os.environ, "PYBUILD_ROOT": str(root)}
    images = subprocess.run(
        [PYBUILD, "images", "-q", "busybox:latest"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if images.returncode == 0 and images.stdout.strip():
        return
    subprocess.run(
        ["bash", str(REPO / "scripts" / "make-busybox.sh"), PYBUILD, "--root", str(root)],
        check=True,
        cwd=REPO,
    )


def _time_build(root: Path, context: Path, args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            PYBUILD,
            "build",
            "--root",
            str(root),
            "--no-cache",
            "-q",
            "-t",
            "netbench",
            *args,
            str(context),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def _namespace_start_stop(runs: int) -> float:
    from builder.runtime.network import PrivateNetwork

    times = []
    for _ in range(runs):
        start = time.perf_counter()
        PrivateNetwork.start().close()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--root", type=Path, help="pybuild store (default: a temporary one)")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="netbench-") as tmp:
        root = opts.root or Path(tmp) / "store"
        _ensure_busybox(root)
        context = Path(tmp) / "ctx"
        context.mkdir()
        steps = "".join(f"RUN echo {i} > /f{i}\n" for i in range(opts.steps))
        (context / "Dockerfile").write_text(f"FROM busybox\n{steps}")
        for args in MODES.values():  # warm-up: base layers extracted, page cache filled
            _time_build(root, context, args)
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        for _ in range(opts.runs):
            for mode, args in MODES.items():
                times[mode].append(_time_build(root, context, args))
    medians = {mode: statistics.median(values) for mode, values in times.items()}
    print(f"{opts.steps} RUN steps, --no-cache, median of {opts.runs} builds each")
    print(f"{'network':<10}{'build s':>10}{'per step ms':>14}{'vs host ms/step':>18}")
    for mode, median in medians.items():
        delta = (median - medians["host"]) / opts.steps * 1000
        per_step = median / opts.steps * 1000
        print(f"{mode:<10}{median:>10.3f}{per_step:>14.1f}{delta:>+18.2f}")
    ns = _namespace_start_stop(max(opts.runs, 10))
    print(f"one private namespace + slirp4netns, start and stop: {ns * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
