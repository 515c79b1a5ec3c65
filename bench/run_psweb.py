"""Time from ``run -d`` to the first HTTP response served by the psweb example.

Builds ``examples/psweb`` into a temporary pybuild store, then, ``--runs`` times in turn:

- ``pybuild run -d -p 127.0.0.1:PORT:8080 psweb`` (private network, published by slirp4netns);
- ``pybuild run -d --network host`` with httpd told to listen on 127.0.0.1:PORT;
- ``docker run -d --network host`` of the very same image (``pybuild save | docker load``),
  when a docker engine answers (the anchors kit's dockerd runs without a bridge, so docker's
  ``-p`` cannot be measured here).

``builder/`` is byte-compiled first, as an installed package is. Each measurement starts the
container, polls ``GET /`` every 2 ms until a 200 arrives, and
removes the container (``rm -f``) afterwards, outside the timed part. Prints the medians.

    .venv/bin/python bench/run_psweb.py [--runs 7] [--docker /usr/bin/docker]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYBUILD = str(Path(sys.executable).with_name("pybuild"))
DOCKER_TAG = "pybuild-bench/psweb:latest"
HTTPD = ["httpd", "-f", "-p"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _first_response(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"no response from {url} within {timeout:.0f} s")
        time.sleep(0.002)


def _timed(start: list[str], remove: list[str], port: int, env: dict[str, str]) -> float:
    begin = time.perf_counter()
    subprocess.run(start, check=True, stdout=subprocess.DEVNULL, env=env)
    _first_response(f"http://127.0.0.1:{port}/")
    elapsed = time.perf_counter() - begin
    subprocess.run(remove, check=True, stdout=subprocess.DEVNULL, env=env)
    return elapsed


def _docker(binary: str) -> str | None:
    if not shutil.which(binary):
        return None
    probe = subprocess.run([binary, "info"], capture_output=True, text=True, check=False)
    return binary if probe.returncode == 0 else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--docker", default="/usr/bin/docker")
    opts = parser.parse_args()
    # an installed pybuild has its .pyc files; with PYTHONDONTWRITEBYTECODE set (as on these
    # machines) an editable checkout would otherwise compile every module at every start
    compile_all = [sys.executable, "-m", "compileall", "-q", "-j", "0", str(REPO / "builder")]
    subprocess.run(compile_all, check=False)
    with tempfile.TemporaryDirectory(prefix="runbench-") as tmp:
        root = Path(tmp) / "store"
        env = {**os.environ, "PYBUILD_ROOT": str(root)}
        subprocess.run(
            ["bash", str(REPO / "scripts" / "make-busybox.sh"), PYBUILD, "--root", str(root)],
            check=True,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            [PYBUILD, "build", "-q", "-t", "psweb", str(REPO / "examples" / "psweb")],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        docker = _docker(opts.docker)
        if docker is not None:
            archive = Path(tmp) / "psweb.tar"
            subprocess.run([PYBUILD, "tag", "psweb", DOCKER_TAG], check=True, env=env)
            subprocess.run([PYBUILD, "save", "-o", str(archive), DOCKER_TAG], check=True, env=env)
            subprocess.run([docker, "load", "-q", "-i", str(archive)], check=True)

        def pybuild_published(port: int) -> tuple[list[str], list[str]]:
            name = f"bench{port}"
            start = [PYBUILD, "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080"]
            return [*start, "psweb"], [PYBUILD, "rm", "-f", name]

        def pybuild_host(port: int) -> tuple[list[str], list[str]]:
            name = f"bench{port}"
            start = [PYBUILD, "run", "-d", "--name", name, "--network", "host"]
            start += ["--entrypoint", "/bin/busybox", "psweb", *HTTPD, f"127.0.0.1:{port}"]
            return [*start, "-h", "/www"], [PYBUILD, "rm", "-f", name]

        def docker_host(port: int) -> tuple[list[str], list[str]]:
            assert docker is not None
            name = f"pybuild-bench-{port}"
            start = [docker, "run", "-d", "--name", name, "--network", "host"]
            start += ["--entrypoint", "/bin/busybox", DOCKER_TAG, *HTTPD, f"127.0.0.1:{port}"]
            return [*start, "-h", "/www"], [docker, "rm", "-f", name]

        cases: dict[str, Callable[[int], tuple[list[str], list[str]]]] = {
            "pybuild run -d -p (private network)": pybuild_published,
            "pybuild run -d --network host": pybuild_host,
        }
        if docker is not None:
            cases["docker run -d --network host"] = docker_host
        times: dict[str, list[float]] = {case: [] for case in cases}
        try:
            for _ in range(opts.runs + 1):  # the first round warms caches and is not counted
                for case, make in cases.items():
                    port = _free_port()
                    start, remove = make(port)
                    times[case].append(_timed(start, remove, port, env))
        finally:
            if docker is not None:
                subprocess.run([docker, "rmi", "-f", DOCKER_TAG], capture_output=True, check=False)
    print(f"run -d to the first HTTP 200 from psweb, median of {opts.runs} (after a warm-up)")
    for case, values in times.items():
        print(f"  {case:<40} {statistics.median(values[1:]) * 1000:8.0f} ms")
    if docker is None:
        print(f"  docker: not measured ({opts.docker} is missing or no engine answers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
