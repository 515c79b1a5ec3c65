"""Parser throughput: pybuild vs dockerfile-parse vs the `dockerfile` package (BuildKit in Go).

Generates a 5,000-instruction Dockerfile with a realistic mix (continuations, JSON forms, flags,
heredocs, ENV/LABEL pairs, comments), parses it with each parser in the same process, and prints
instructions/second (best of N runs, after a warm-up) and the ratios to pybuild. The parsers take
turns (one run of each per round), so that a busy spell on a shared machine slows them alike.

    .venv/bin/python bench/parse.py [--instructions 5000] [--runs 15]
"""

from __future__ import annotations

import argparse
import random
import statistics
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--instructions", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=15)
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
        try:
            from dockerfile_parse import DockerfileParser

            path = Path(tmp) / "Dockerfile"
            path.write_text(text)
            parsers["dockerfile-parse"] = lambda: len(DockerfileParser(str(path)).structure)
        except ImportError:
            print("dockerfile-parse not installed: skipped")
        results = rates(parsers, opts.runs)

    mine = results["pybuild"][0]
    print(f"{opts.instructions} instructions, best of {opts.runs} runs (median in brackets)")
    print(f"{'parser':28} {'instr/s':>12} {'(median)':>12} {'pybuild ratio':>14}")
    for name, (best, median) in results.items():
        print(f"{name:28} {best:12,.0f} {median:12,.0f} {mine / best:13.2f}x")


if __name__ == "__main__":
    main()
