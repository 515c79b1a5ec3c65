"""Containers: ``run -d`` under conmon, ``ps``, ``exec``, ``logs``, ``stop``/``start``,
``restart``, ``kill``, ``rm``, ``port``, ``inspect``, HEALTHCHECK and restart policies, through
the real CLI, runc, conmon and slirp4netns. Published ports are on 127.0.0.1 only.
"""

from __future__ import annotations

import itertools
import json
import os
import pty
import re
import select
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from enginekit import PYBUILD, REPO, Builder, mounts

pytestmark = pytest.mark.integration

_NAMES = itertools.count()
WAIT = 60.0  # seconds: a generous bound for things that happen in well under a second


def wait_for(what: str, check: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return None


class Containers:
    """The CLI on the session store, with every container it names removed at the end."""

    def __init__(self, pb: Builder) -> None:
        self.pb = pb
        self.names: list[str] = []

    def name(self) -> str:
        name = f"c{next(_NAMES)}-{id(self) % 10000}"
        self.names.append(name)
        return name

    def __call__(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.pb.cli(*argv, check=check)

    def inspect(self, name: str) -> dict[str, object]:
        data = json.loads(self("inspect", name).stdout)
        assert isinstance(data, list)
        record = data[0]
        assert isinstance(record, dict)
        return record

    def state(self, name: str) -> dict[str, object]:
        state = self.inspect(name)["State"]
        assert isinstance(state, dict)
        return state

    def directory(self, name: str) -> Path:
        return self.pb.store_root / "containers" / str(self.inspect(name)["Id"])

    def running(self, name: str) -> bool:
        return bool(self.state(name)["Running"])


@pytest.fixture
def ctr(pb: Builder) -> Iterator[Containers]:
    containers = Containers(pb)
    yield containers
    for name in containers.names:
        containers("rm", "-f", name, check=False)


@pytest.fixture(scope="module")
def psweb(store_root: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """examples/psweb built once into the session store."""
    pb = Builder(store_root=store_root, workdir=tmp_path_factory.mktemp("psweb"), busybox_history=0)
    tag = pb.new_tag("psweb")
    pb.build(None, tag=tag, context_dir=REPO / "examples" / "psweb")
    return tag


def _processes_with(text: str) -> list[str]:
    """Command lines of live processes that mention ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        if text in cmdline and stat.rpartition(")")[2].split()[0] != "Z":
            found.append(cmdline)
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


# --------------------------------------------------------------------------- the README workflow


def test_readme_workflow_with_psweb(ctr: Containers, psweb: str) -> None:
    name, port = ctr.name(), free_port()
    started = ctr("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080", psweb)
    container_id = started.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", container_id)
    url = f"http://127.0.0.1:{port}/"
    wait_for("the page", lambda: http_get(url) is not None)
    page = http_get(url)
    assert page is not None
    assert "<title>pybuild demo</title>" in page

    listed = ctr("ps").stdout.splitlines()
    header = ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert listed[0].split() == header
    row = next(line for line in listed if line.endswith(f"   {name}"))
    assert row.startswith(container_id[:12] + "   ")
    assert f"127.0.0.1:{port}->8080/tcp" in row
    assert re.search(r"   Up (Less than a second|\d+ seconds?)   ", row)
    assert '"/bin/busybox httpd …"' in row
    assert container_id[:12] in ctr("ps", "-q").stdout.split()
    records = [json.loads(line) for line in ctr("ps", "--format", "json").stdout.splitlines()]
    assert any(r["Names"] == name and r["State"] == "running" for r in records)

    assert ctr("port", name).stdout == f"8080/tcp -> 127.0.0.1:{port}\n"
    logs = ctr("logs", name)
    assert "response:200" in logs.stdout + logs.stderr

    ctr("stop", "-t", "1", name)  # httpd as PID 1 ignores SIGTERM: killed after 1 s
    assert ctr.state(name)["ExitCode"] == 137
    exited = next(line for line in ctr("ps", "-a").stdout.splitlines() if line.endswith(name))
    assert re.search(r"   Exited \(137\) (Less than a second|\d+ seconds?) ago   ", exited)
    assert name not in ctr("ps").stdout
    assert http_get(url) is None

    ctr("start", name)
    wait_for("the page again", lambda: http_get(url) is not None)
    ctr("rm", "-f", name)
    assert name not in ctr("ps", "-a").stdout


def test_missing_entrypoint_is_a_clear_error(ctr: Containers) -> None:
    name = ctr.name()
    failed = ctr(
        "run", "-d", "--name", name, "--entrypoint", "/no/such/program", "busybox", check=False
    )
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1, failed.stderr
    assert failed.stderr.startswith("ERROR: ")
    assert "/no/such/program" in failed.stderr
    assert "no such file or directory" in failed.stderr.lower()
    assert ctr.state(name)["Status"] == "created"


# --------------------------------------------------------------------------- state and files


def test_stop_start_keeps_written_files_and_rm_removes_them(ctr: Containers) -> None:
    name = ctr.name()
    script = "test -e /data.txt || echo first > /data.txt; exec sleep 1000"
    ctr("run", "-d", "--name", name, "busybox", "sh", "-c", script)
    wait_for("the file", lambda: ctr("exec", name, "cat", "/data.txt", check=False).stdout != "")
    # exec sees the container's filesystem, and what it writes is the container's too
    ctr("exec", name, "sh", "-c", "echo more >> /data.txt")
    directory = ctr.directory(name)
    assert (directory / "upper" / "data.txt").read_text() == "first\nmore\n"
    ctr("stop", "-t", "1", name)
    assert not ctr.running(name)
    ctr("start", name)
    assert ctr("exec", name, "cat", "/data.txt").stdout == "first\nmore\n"
    ctr("rm", "-f", name)
    assert not directory.exists()
    assert ctr("exec", name, "true", check=False).stderr.startswith(
        f"ERROR: No such container: {name}"
    )


def test_exec_flags(ctr: Containers) -> None:
    name = ctr.name()
    ctr("run", "-d", "--name", name, "-e", "FROM_RUN=r", "busybox", "sleep", "1000")
    out = ctr(
        "exec",
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "-u",
        "1234:5678",
        name,
        "sh",
        "-c",
        "echo $A $FROM_RUN; pwd; id -u; id -g",
    )
    assert out.stdout.split() == ["1", "r", "/tmp", "1234", "5678"]
    assert ctr("exec", name, "sh", "-c", "exit 7", check=False).returncode == 7


def test_logs_follow_tail_and_timestamps(ctr: Containers) -> None:
    name = ctr.name()
    script = "echo one; echo err >&2; sleep 1; echo two; sleep 1; echo three"
    ctr("run", "-d", "--name", name, "busybox", "sh", "-c", script)
    followed = ctr("logs", "-f", name)  # returns when the container exits
    assert followed.stdout == "one\ntwo\nthree\n"
    assert followed.stderr == "err\n"
    assert ctr("logs", "--tail", "1", name).stdout == "three\n"
    stamped = ctr("logs", "-t", name).stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["one", "two", "three"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", s.split()[0]) for s in stamped)
    assert ctr("logs", "--since", "1h", name).stdout == "one\ntwo\nthree\n"


def test_stop_sends_the_stop_signal_then_kills_after_the_timeout(
    ctr: Containers, pb: Builder
) -> None:
    tag = pb.new_tag("stopsig")
    pb.build(
        "FROM busybox\nSTOPSIGNAL SIGUSR1\n"
        'CMD ["sh", "-c", "trap \'echo got usr1; exit 3\' USR1; while :; do sleep 0.1; done"]\n',
        tag=tag,
    )
    graceful = ctr.name()
    ctr("run", "-d", "--name", graceful, tag)
    ctr("stop", graceful)
    assert ctr.state(graceful)["ExitCode"] == 3
    assert ctr("logs", graceful).stdout == "got usr1\n"
    stubborn = ctr.name()  # ignores the stop signal: SIGKILL after -t seconds
    ctr("run", "-d", "--name", stubborn, "busybox", "sh", "-c", "trap '' TERM; sleep 1000 & wait")
    ctr("stop", "-t", "1", stubborn)
    assert ctr.state(stubborn)["ExitCode"] == 137


def test_restart_on_failure_counts_restarts(ctr: Containers) -> None:
    name = ctr.name()
    script = "echo run >> /runs; echo attempt $(wc -l < /runs); exit 1"
    ctr("run", "-d", "--name", name, "--restart", "on-failure:2", "busybox", "sh", "-c", script)

    def settled() -> bool:
        record = ctr.inspect(name)
        state = record["State"]
        assert isinstance(state, dict)
        return state["Status"] == "exited" and record["RestartCount"] == 2

    wait_for("two restarts", settled)
    assert ctr("logs", name).stdout == "attempt 1\nattempt 2\nattempt 3\n"
    assert ctr.state(name)["ExitCode"] == 1


def test_kill_sends_a_signal(ctr: Containers) -> None:
    name = ctr.name()
    ctr(
        "run",
        "-d",
        "--name",
        name,
        "busybox",
        "sh",
        "-c",
        "trap 'exit 5' HUP; while :; do sleep 0.1; done",
    )
    ctr("kill", "-s", "HUP", name)
    wait_for("the exit", lambda: not ctr.running(name))
    assert ctr.state(name)["ExitCode"] == 5


def test_rm_f_of_a_running_container_leaves_nothing(ctr: Containers, pb: Builder) -> None:
    name = ctr.name()
    ctr(
        "run", "-d", "--name", name, "-p", f"127.0.0.1:{free_port()}:80", "busybox", "sleep", "1000"
    )
    directory = ctr.directory(name)
    container_id = directory.name
    state = json.loads((directory / "state.json").read_text())
    pids = [state["pid"], state["conmon_pid"], *state["network_pids"]]
    assert all(_alive(pid) for pid in pids)
    ctr("rm", "-f", name)
    wait_for("the processes to end", lambda: not any(_alive(pid) for pid in pids))
    assert _processes_with(container_id) == []
    assert not directory.exists()
    assert [m for m in mounts() if container_id in m] == []
    runc = subprocess.run(
        ["runc", "--root", str(pb.store_root / "runc-containers"), "list", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert container_id not in runc.stdout


def test_names_and_ports_are_not_shared(ctr: Containers) -> None:
    name, port = ctr.name(), free_port()
    ctr("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "1000")
    again = ctr("run", "-d", "--name", name, "busybox", "true", check=False)
    assert again.returncode == 1
    assert f'Conflict. The container name "/{name}" is already in use' in again.stderr
    other = ctr.name()
    busy = ctr(
        "run", "-d", "--name", other, "-p", f"127.0.0.1:{port}:80", "busybox", "true", check=False
    )
    assert busy.returncode == 1
    assert f"Bind for 127.0.0.1:{port} failed: port is already allocated" in busy.stderr


def test_healthcheck_status_in_ps(ctr: Containers, pb: Builder) -> None:
    tag = pb.new_tag("health")
    pb.build(
        "FROM busybox\n"
        "HEALTHCHECK --interval=1s --timeout=5s --retries=2 CMD test -e /healthy\n"
        'CMD ["sleep", "1000"]\n',
        tag=tag,
    )
    name = ctr.name()
    ctr("run", "-d", "--name", name, tag)

    def health() -> str:
        state = ctr.state(name)
        value = state.get("Health")
        assert isinstance(value, dict)
        return str(value["Status"])

    wait_for("unhealthy", lambda: health() == "unhealthy")
    assert "(unhealthy)" in ctr("ps").stdout
    ctr("exec", name, "touch", "/healthy")
    wait_for("healthy", lambda: health() == "healthy")
    assert "(healthy)" in ctr("ps").stdout
    monitor = json.loads((ctr.directory(name) / "state.json").read_text())["monitor_pid"]
    assert _alive(monitor)
    ctr("rm", "-f", name)
    wait_for("the monitor to end", lambda: not _alive(monitor))


def test_subcommand_names_are_not_build_contexts(ctr: Containers, tmp_path: Path) -> None:
    unknown = ctr("frobnicate", check=False)
    assert unknown.returncode == 1
    assert (
        unknown.stderr == "pybuild: 'frobnicate' is not a pybuild command.\nSee 'pybuild --help'\n"
    )
    (ctr.pb.workdir / "ps").mkdir()  # even with a directory named ps here
    assert ctr("ps").stdout.startswith("CONTAINER ID")


def test_container_prune_and_image_kept_for_containers(ctr: Containers, pb: Builder) -> None:
    tag = pb.new_tag("kept")
    built = pb.build("FROM busybox\nRUN echo kept > /kept\n", tag=tag)
    name = ctr.name()
    ctr("run", "-d", "--name", name, built.image_id, "cat", "/kept")
    wait_for("the exit", lambda: not ctr.running(name))
    ctr("rmi", "-f", tag)  # untagged: the image stays, dangling, for its container
    ctr("prune", "-f")  # removes dangling images; the container's image is a root of its own
    assert ctr("fsck").stdout.startswith("ok: ")
    ctr("start", name)  # the image's blobs survived the prune: the container still starts
    wait_for("the second exit", lambda: not ctr.running(name))
    assert ctr("logs", name).stdout == "kept\nkept\n"
    pruned = ctr("container", "prune", "-f")
    assert "Deleted Containers:" in pruned.stdout
    assert name not in ctr("ps", "-a").stdout


def test_rmi_refuses_an_image_a_container_uses(ctr: Containers, pb: Builder) -> None:
    tag = pb.new_tag("inuse")
    built = pb.build("FROM busybox\nRUN echo used > /used\n", tag=tag)
    image = built.image_id.removeprefix("sha256:")[:12]
    name = ctr.name()
    ctr("run", "-d", "--name", name, tag, "sleep", "1000")
    container = str(ctr.inspect(name)["Id"])[:12]
    refused = ctr("rmi", tag, check=False)
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == (
        f'Error response from daemon: conflict: unable to remove repository reference "{tag}"'
        f" (must force) - container {container} is using its referenced image {image}\n"
    )
    by_id = ctr("rmi", "-f", built.image_id, check=False)
    assert by_id.returncode == 1
    assert by_id.stderr == (
        f"Error response from daemon: conflict: unable to delete {image} (cannot be forced)"
        f" - image is being used by running container {container}\n"
    )
    ctr("history", tag)  # both refusals left the name in place
    ctr("stop", "-t", "0", name)  # a stopped container holds its image just the same
    assert ctr("rmi", tag, check=False).returncode == 1
    assert ctr("rmi", "-f", tag).stdout == f"Untagged: {tag}\n"
    assert ctr("rmi", tag, check=False).stderr.startswith("Error response from daemon: No such")
    ctr("start", name)  # the container still starts from its image
    assert ctr("exec", name, "cat", "/used").stdout == "used\n"


def _read_until(fd: int, token: bytes) -> bytes:
    buffer = b""
    deadline = time.monotonic() + WAIT
    while token not in buffer:
        assert time.monotonic() < deadline, f"no {token!r} in {buffer!r}"
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                buffer += os.read(fd, 4096)
            except OSError:  # the other side closed
                break
    return buffer


def test_interactive_shell_under_a_pty(pb: Builder) -> None:
    controller, terminal = pty.openpty()
    try:
        shell = subprocess.Popen(
            [PYBUILD, "run", "-it", "busybox", "sh"],
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            env=pb.environ(),
            start_new_session=True,
        )
        os.close(terminal)
        _read_until(controller, b"# ")
        os.write(controller, b"tty; echo $((6*7)); exit 3\r")
        output = _read_until(controller, b"42\r\n")
        assert b"/dev/pts/0\r\n42\r\n" in output  # a terminal inside, and a shell reading it
        assert shell.wait(timeout=WAIT) == 3
    finally:
        os.close(controller)
