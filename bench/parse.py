"""Parser throughput: pybuild vs dockerfile-parse vs the `dockerfile` package (BuildKit in Go).

Generates a 5,000-instruction Dockerfile with a realistic mix (continuations, JSON forms, flags,
heredocs, ENV/LABEL pairs, comments), parses it with each parser in the same process, and prints
instructions/second (best of N runs, after a warm-up) and the ratios to pybuild.

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


def best_rate(fn: Callable[[], int], runs: int) -> tuple[float, float]:
    fn()  # warm-up (grammar compilation, imports)
    times = []
    count = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - t0)
    return count / min(times), count / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--instructions", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=15)
    opts = ap.parse_args()
    text = generate(opts.instructions)

    from builder.syntax.parser import parse

    results: dict[str, tuple[float, float]] = {}
    results["pybuild"] = best_rate(lambda: len(parse(text).nodes), opts.runs)
    try:
        import dockerfile

        results["dockerfile (BuildKit Go)"] = best_rate(
            lambda: len(dockerfile.parse_string(text)), opts.runs
        )
    except ImportError:
        print("dockerfile package not installed: skipped")
    try:
        from dockerfile_parse import DockerfileParser

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "Dockerfile"
            path.write_text(text)

            def dfp() -> int:
                return len(DockerfileParser(str(path)).structure)

            results["dockerfile-parse"] = best_rate(dfp, opts.runs)
    except ImportError:
        print("dockerfile-parse not installed: skipped")

    mine = results["pybuild"][0]
    print(f"{opts.instructions} instructions, best of {opts.runs} runs (median in brackets)")
    print(f"{'parser':28} {'instr/s':>12} {'(median)':>12} {'pybuild ratio':>14}")
    for name, (best, median) in results.items():
        print(f"{name:28} {best:12,.0f} {median:12,.0f} {mine / best:13.2f}x")


if __name__ == "__main__":
    main()
