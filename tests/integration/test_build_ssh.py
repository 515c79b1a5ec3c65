"""``pybuild build --ssh`` feeding ``RUN --mount=type=ssh``: a real ``ssh-agent`` holding a key
made by ``ssh-keygen`` is listed by ``ssh-add -l`` inside the step (the host's ssh-add and its
libraries are copied into the image), key files get a private agent that is gone after the
build, the mount's options, a missing id, and bad ``--ssh`` values."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from enginekit import PYBUILD, Builder, Built

pytestmark = pytest.mark.integration

SSH_ADD = shutil.which("ssh-add") or "/usr/bin/ssh-add"


@dataclass(frozen=True, slots=True, kw_only=True)
class Key:
    path: Path
    fingerprint: str  # "SHA256:..."


def _keygen(directory: Path, name: str) -> Key:
    path = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)],
        check=True,
        timeout=60,
    )
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(path)], capture_output=True, text=True, check=True
    )
    return Key(path=path, fingerprint=listed.stdout.split()[1])


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[str, Key]]:
    """A real ssh-agent (stopped after the test) holding one fresh key: (socket, key)."""
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline()  # printed once the socket listens
        key = _keygen(tmp_path, "agentkey")
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", "-q", str(key.path)], env=env, check=True, timeout=60)
        yield str(sock), key
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _tools_context(pb: Builder) -> Path:
    """A context whose ``tools/`` holds the host's ssh-add and the libraries ``ldd`` lists,
    at their host paths, for ``COPY tools/ /``."""
    ctx = pb.context({})
    tools = ctx / "tools"
    needed = [SSH_ADD]
    ldd = subprocess.run(["ldd", SSH_ADD], capture_output=True, text=True, check=True)
    for line in ldd.stdout.splitlines():
        words = line.split()
        if "=>" in words and len(words) > words.index("=>") + 1:
            needed.append(words[words.index("=>") + 1])
        elif words and words[0].startswith("/"):
            needed.append(words[0])
    for path in needed:
        if not path.startswith("/"):
            continue
        real = Path(path).resolve()
        dest = tools / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(real, dest)
    return ctx


def _build(
    pb: Builder,
    ctx: Path,
    dockerfile: str,
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> Built:
    (ctx / "Dockerfile").write_text(dockerfile)
    return pb.build_context(str(ctx), args=args, env=env, check=check)


def _head() -> str:
    """A base no other build shares: an ssh step is cached by its mount's id only."""
    return f"FROM busybox\nENV NONCE={os.urandom(8).hex()}\nCOPY tools/ /\n"


def test_agent_socket_lists_the_key_inside_run_and_leaves_no_trace(
    pb: Builder, agent: tuple[str, Key]
) -> None:
    sock, key = agent
    ctx = _tools_context(pb)
    dockerfile = (
        f"{_head()}"
        "RUN --mount=type=ssh ssh-add -l > /listed && echo $SSH_AUTH_SOCK > /sockvar"
        " && stat -c '%a %u %g %F' /run/buildkit/ssh_agent.0 > /sockstat\n"
        "RUN --mount=type=ssh,target=/s/agent,mode=0660,uid=5,gid=6"
        " stat -c '%a %u %g %F' /s/agent > /optstat && echo $SSH_AUTH_SOCK > /optvar\n"
    )
    built = _build(pb, ctx, dockerfile, ["--ssh", "default"], env={"SSH_AUTH_SOCK": sock})
    files = built.files
    listed = files["/listed"].text
    assert key.fingerprint in listed, listed
    assert "agentkey" in listed
    assert files["/sockvar"].text.strip() == "/run/buildkit/ssh_agent.0"
    assert files["/sockstat"].text.strip() == "600 0 0 socket"
    assert files["/optstat"].text.strip() == "660 5 6 socket"
    assert files["/optvar"].text.strip() == "/s/agent"
    # the sockets' mount points are not in any layer
    assert not [p for p in files if p in ("/run", "/s") or p.startswith(("/run/", "/s/"))]
    assert not [p for p, e in files.items() if e.type == "socket"]


def test_key_files_get_a_private_agent_stopped_after_the_build(pb: Builder) -> None:
    keys = [_keygen(pb.workdir, "filekey1"), _keygen(pb.workdir, "filekey2")]
    ctx = _tools_context(pb)
    dockerfile = f"{_head()}RUN --mount=type=ssh,id=deploy ssh-add -l > /listed\n"
    spec = f"deploy={keys[0].path},{keys[1].path}"
    listed = _build(pb, ctx, dockerfile, ["--ssh", spec]).files["/listed"].text
    assert [line.split()[1] for line in listed.splitlines()] == [k.fingerprint for k in keys]
    agents = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    assert "pybuild-ssh-agent-" not in agents.stdout


def test_missing_id_skips_the_mount_unless_required(pb: Builder, agent: tuple[str, Key]) -> None:
    sock, _ = agent
    ctx = pb.context({})
    ok = _build(
        pb,
        ctx,
        "FROM busybox\nRUN --mount=type=ssh,id=other test ! -e /run/buildkit/ssh_agent.0"
        f' && test "$SSH_AUTH_SOCK" = /run/buildkit/ssh_agent.0 && echo {os.urandom(4).hex()}\n',
        ["--ssh", f"default={sock}"],
    )
    assert ok.ok
    bad = _build(
        pb,
        ctx,
        "FROM busybox\nRUN --mount=type=ssh,id=other,required true\n",
        ["--ssh", f"default={sock}"],
        check=False,
    )
    errors = [ln for ln in bad.stderr.splitlines() if ln.startswith("ERROR: ")]
    assert len(errors) == 1, bad.stderr
    assert errors[0].startswith("ERROR: Dockerfile:2"), errors[0]
    assert errors[0].endswith('no SSH key "other" forwarded from the client'), errors[0]


def test_bad_ssh_flags_fail_with_one_line(pb: Builder, agent: tuple[str, Key]) -> None:
    sock, key = agent
    ctx = pb.context({"Dockerfile": "FROM busybox\nRUN true\n"})
    no_agent = {k: v for k, v in pb.environ().items() if k != "SSH_AUTH_SOCK"}
    proc = subprocess.run(
        [PYBUILD, "build", "--ssh", "default", str(ctx)],
        capture_output=True,
        text=True,
        env=no_agent,
        timeout=300,
        check=False,
    )
    assert proc.returncode != 0
    assert "invalid empty ssh agent socket: make sure SSH_AUTH_SOCK is set" in proc.stderr
    assert "Traceback" not in proc.stderr
    cases = (
        (f"default={pb.workdir}/nope", f"failed to stat {pb.workdir}/nope"),
        (f"a={sock},{key.path}", "invalid combination of keys and sockets"),
        (f"a={sock},{sock}", "only single socket allowed"),
        ("=x", "invalid ssh spec"),
    )
    for spec, message in cases:
        bad = pb.cli("build", "--ssh", spec, str(ctx))
        assert bad.returncode != 0, spec
        assert message in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr
    dup = pb.cli("build", "--ssh", f"a={sock}", "--ssh", f"a={sock}", str(ctx))
    assert "invalid duplicate ID a" in dup.stderr, dup.stderr
