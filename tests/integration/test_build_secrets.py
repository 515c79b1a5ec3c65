"""``pybuild build --secret`` feeding ``RUN --mount=type=secret``: file and env forms, the
mount's options, a missing required secret, the cache key, and no trace of the value left on
disk or in the output."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import pytest
from enginekit import Builder, files_containing

pytestmark = pytest.mark.integration

FILE_STEP = (
    "RUN --mount=type=secret,id=tok"
    " sha256sum /run/secrets/tok | cut -d' ' -f1 > /tok.sha"
    " && stat -c '%a %u %g' /run/secrets/tok > /tok.stat\n"
)
ENV_STEP = (
    "RUN --mount=type=secret,id=tok,env=TOK,target=/s/t,mode=0440,uid=1,gid=2"
    ' printf %s "$TOK" | sha256sum | cut -d" " -f1 > /env.sha'
    " && stat -c '%a %u %g' /s/t > /t.stat"
    " && grep ' /etc/hosts ' /proc/self/mountinfo | sed 's/.* - //' | cut -d' ' -f1 > /hosts.fs\n"
)


def _head() -> str:
    """A base no other build shares: the secret is not in the cache key, so a step another
    test ran with another value would otherwise be a cache hit."""
    return f"FROM busybox\nENV NONCE={os.urandom(8).hex()}\n"


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _secret_file(pb: Builder, value: str) -> Path:
    path = pb.workdir / "secret.txt"
    path.write_text(value)
    return path


def test_secret_from_file_and_env_reaches_run_but_not_the_layer(pb: Builder) -> None:
    value = os.urandom(16).hex()
    src = _secret_file(pb, value)
    built = pb.build(f"{_head()}{FILE_STEP}{ENV_STEP}", args=["--secret", f"id=tok,src={src}"])
    files = built.files
    assert files["/tok.sha"].text.strip() == _sha(value)
    assert files["/tok.stat"].text.strip() == "400 0 0"
    assert files["/env.sha"].text.strip() == _sha(value)
    assert files["/t.stat"].text.strip() == "440 1 2"
    # the step's runtime bundle (its config.json holds the env value) is in memory, not on disk
    assert files["/hosts.fs"].text.strip() == "tmpfs"
    assert "/run/secrets/tok" not in files
    assert "/s" not in files
    assert [p for p, e in files.items() if value.encode() in e.content] == []


def test_secret_from_environment_forms(pb: Builder) -> None:
    value = os.urandom(16).hex()
    ctx = pb.context({"Dockerfile": f"FROM busybox\n{FILE_STEP}"})
    for spec, env in (
        ("id=tok", {"tok": value}),
        ("id=tok,env=MY_TOKEN", {"MY_TOKEN": value}),
        ("type=env,id=tok,src=MY_TOKEN", {"MY_TOKEN": value}),
    ):
        built = pb.build_context(str(ctx), args=["--no-cache", "--secret", spec], env=env)
        assert built.files["/tok.sha"].text.strip() == _sha(value), spec


def test_required_secret_missing_fails_at_the_line(pb: Builder) -> None:
    dockerfile = "FROM busybox\nRUN --mount=type=secret,id=absent,required=true true\n"
    bad = pb.build(dockerfile, check=False)
    line = bad.error_line()
    assert line.startswith("ERROR: Dockerfile:2"), line
    assert line.endswith("secret absent: not found"), line
    # not required: the step runs without it
    ok = pb.build(
        "FROM busybox\nRUN --mount=type=secret,id=absent test ! -e /run/secrets/absent"
        " && touch /ran\n"
    )
    assert "/ran" in ok.files


def test_bad_secret_flags_fail_with_buildx_wording(pb: Builder) -> None:
    dockerfile = "FROM busybox\nRUN true\n"
    cases = (
        ("id=tok,foo=bar", "unexpected key 'foo' in 'foo=bar'"),
        ("id=tok,type=ssh", 'unsupported secret type "ssh"'),
        ("id", "invalid field 'id' must be a key=value pair"),
        (f"id=tok,src={pb.workdir}/nope", f"failed to stat {pb.workdir}/nope"),
    )
    for spec, message in cases:
        bad = pb.build(dockerfile, args=["--secret", spec], check=False)
        assert bad.returncode != 0, spec
        assert message in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr


def test_secret_value_left_nowhere_and_not_in_the_cache_key(pb: Builder) -> None:
    value = "pybuild-secret-" + os.urandom(24).hex()
    src = _secret_file(pb, value)
    dockerfile = f"{_head()}{FILE_STEP}{ENV_STEP}RUN echo done > /done\n"
    built = pb.build(dockerfile, args=["--secret", f"id=tok,src={src}"])
    assert built.files["/tok.sha"].text.strip() == _sha(value)
    needle = value.encode()
    assert needle not in built.stdout.encode()
    assert needle not in built.stderr.encode()
    tops = [pb.store_root, Path("/tmp"), Path("/dev/shm"), Path(tempfile.gettempdir())]
    assert files_containing(tops, needle, skip=(src,)) == []
    # only the value changes (a fresh context: no no-op record applies): every step is cached,
    # the layer keeps the first value's hash
    other = os.urandom(16).hex()
    src.write_text(other)
    again = pb.build(dockerfile, args=["--secret", f"id=tok,src={src}"], context_name="ctx2")
    assert again.image_id == built.image_id
    assert again.files["/tok.sha"].text.strip() == _sha(value)
    assert again.stderr.count("CACHED") == 3, again.stderr
    assert other.encode() not in again.stderr.encode()
