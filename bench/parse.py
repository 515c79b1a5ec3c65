"""Parser throughput: pybuild vs dockerfile-parse vs the `dockerfile` package (BuildKit in Go).

Generates a 5,000-instruction Dockerfile with a realistic mix (continuations, JSON forms, flags,
heredocs, ENV/LABEL pairs, comments), parses it with each parser in the same process, and prints
instructions/second (best of N runs, after a warm-up) and the ratios to pybuild. The parsers take
turns (one run of each per round), so that a busy spell on a shared machine slows them alike.

Then the Dockerfile tools as whole processes, as a user runs them: ``pybuild parse --json``,
``check`` and ``fmt`` on the same file, against a Python process that parses it with the
``dockerfile`` package (BuildKit's Go parser) and prints its commands as JSON with the standard
library's C encoder (``json.dump`` without ``indent``, the fastest way Python prints them). The
commands take turns again; each gets its median wall time and median CPU time (user + system,
from ``wait4``) and its ratio to the reference process (``<= 1``: at or under it).

    .venv/bin/python bench/parse.py [--instructions 5000] [--runs 15] [--process-runs 11]
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def generate(n: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    out = ["# syntax=docker/dockerfile:1", "ARG BASE=busybox", "FROM $BASE AS build"]
    makers: list[Callable[[int], str]] = [
        lambda i: f"RUN set -eux; \\\n    echo step {i} && \\\n    ls -la /tmp/{i}",
        lambda i: f"COPY --chown=1:1 --chmod=644 src/{i} /dst/{i}/",
        lambda i: f"ENV A{i}=\"v {i}\" B{i}=x C{i}='quoted {i}'",
        lambda i: f'LABEL org.example.l{i}="x" m{i}=y',
        lambda i: f'CMD ["sh", "-c", "echo {i}"]',
        lambda i: f"RUN <<EOF\necho {i}\nls /\nEOF",
        lambda i: f"WORKDIR /w/{i}",
        lambda i: f"ARG X{i}=1",
        lambda i: f"EXPOSE {8000 + i % 1000}/tcp 80",
        lambda i: f"HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost:{i}/",
        lambda i: f"# comment {i}\nUSER {i}:{i}",
        lambda i: f'RUN --mount=type=cache,target=/root/.cache ["pip", "install", "pkg{i}"]',
    ]
    count = 3
    while count < n:
        out.append(rng.choice(makers)(count))
        count += 1
    return "\n".join(out) + "\n"


def rates(parsers: dict[str, Callable[[], int]], runs: int) -> dict[str, tuple[float, float]]:
    """Instructions/second of each parser: (best, median) over ``runs`` interleaved rounds."""
    counts = {name: fn() for name, fn in parsers.items()}  # warm-up (grammar loading, imports)
    times: dict[str, list[float]] = {name: [] for name in parsers}
    for _ in range(runs):
        for name, fn in parsers.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {
        name: (counts[name] / min(times[name]), counts[name] / statistics.median(times[name]))
        for name in parsers
    }


REFERENCE = (
    "import json, sys\n"
    "import dockerfile\n"
    "json.dump([c._asdict() for c in dockerfile.parse_file(sys.argv[1])], sys.stdout,"
    " ensure_ascii=False)\n"
    "sys.stdout.write('\\n')\n"
)


def pybuild_command() -> list[str]:
    """The console script beside this interpreter (as installed), else ``python -m builder``."""
    script = shutil.which("pybuild", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "builder"]


def run_process(argv: list[str]) -> tuple[float, float]:
    """(wall, user + system CPU) seconds of one run of ``argv``, output discarded."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited with {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def processes(path: Path, runs: int) -> None:
    """Whole-process times of the Dockerfile tools against the reference process, interleaved."""
    pb = pybuild_command()
    commands = {
        "pybuild parse --json": [*pb, "parse", "--json", "-f", str(path)],
        "pybuild check": [*pb, "check", "-f", str(path)],
        "pybuild fmt": [*pb, "fmt", str(path)],
    }
    try:
        import dockerfile  # noqa: F401
    except ImportError:
        print("dockerfile package not installed: no reference process")
        return
    reference = "python + dockerfile (Go) + json"
    commands[reference] = [sys.executable, "-c", REFERENCE, str(path)]
    # Bytecode compiled as a `pip install` compiles it (bench/anchors.sh does the same): with
    # PYTHONDONTWRITEBYTECODE set, an editable checkout would recompile every module each start.
    for package in ("builder", "lark"):
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            location = next(iter(spec.submodule_search_locations))
            compileall.compile_dir(location, quiet=1, workers=0)
    # and the dataclass methods' bytecode beside it, as `make venv` writes it
    warm = "from builder._dataclass_code import warm; warm()"
    subprocess.run([sys.executable, "-c", warm], check=True)
    for argv in commands.values():  # warm-up: page cache, Lark's grammar cache
        run_process(argv)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            samples[name].append(run_process(argv))
    medians = {
        name: (statistics.median(w for w, _ in s), statistics.median(c for _, c in s))
        for name, s in samples.items()
    }
    ref_wall, ref_cpu = medians[reference]
    print(f"\nwhole processes, median of {runs} interleaved runs (ratio to the reference process)")
    print(f"{'command':32} {'wall s':>8} {'ratio':>7} {'cpu s':>8} {'ratio':>7}")
    for name, (wall, cpu) in medians.items():
        print(f"{name:32} {wall:8.3f} {wall / ref_wall:6.2f}x {cpu:8.3f} {cpu / ref_cpu:6.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--instructions", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--process-runs", type=int, default=11, help="0: skip the whole processes")
    opts = ap.parse_args()
    text = generate(opts.instructions)

    from builder.syntax.parser import parse

    parsers: dict[str, Callable[[], int]] = {"pybuild": lambda: len(parse(text).nodes)}
    try:
        import dockerfile

        parsers["dockerfile (BuildKit Go)"] = lambda: len(dockerfile.parse_string(text))
    except ImportError:
        print("dockerfile package not installed: skipped")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "Dockerfile"
        path.write_text(text)
        try:
            from dockerfile_parse import DockerfileParser

            parsers["dockerfile-parse"] = lambda: len(DockerfileParser(str(path)).structure)
        except ImportError:
            print("dockerfile-parse not installed: skipped")
        results = rates(parsers, opts.runs)

        mine = results["pybuild"][0]
        print(f"{opts.instructions} instructions, best of {opts.runs} runs (median in brackets)")
        print(f"{'parser':28} {'instr/s':>12} {'(median)':>12} {'pybuild ratio':>14}")
        for name, (best, median) in results.items():
            print(f"{name:28} {best:12,.0f} {median:12,.0f} {mine / best:13.2f}x")
        if opts.process_runs:
            processes(path, opts.process_runs)


if __name__ == "__main__":
    main()
