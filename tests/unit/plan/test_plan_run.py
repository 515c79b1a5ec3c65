"""RUN steps: argv with heredocs, mounts, network, security, environment."""

from __future__ import annotations

from planfixtures import created_by, make_plan, target

from builder.digest import Digest
from builder.plan import (
    CopyStep,
    FromContext,
    FromScratch,
    GitSource,
    PathSource,
    RunFile,
    RunStep,
    UrlSource,
)
from builder.syntax import ir


def run(text: str, **kwargs: object) -> RunStep:
    step = target("FROM alpine\n" + text, **kwargs).steps[-1]
    assert isinstance(step, RunStep)
    return step


def test_shell_and_exec_forms() -> None:
    assert run("RUN echo hi\n").args == ("/bin/sh", "-c", "echo hi")
    assert run('RUN ["echo", "hi"]\n').args == ("echo", "hi")


def test_single_heredoc_is_the_whole_command() -> None:
    step = run("RUN <<EOF\necho one\necho two\nEOF\n")
    assert step.args == ("/bin/sh", "-c", "echo one\necho two\n")
    assert step.heredoc_files == ()
    assert created_by(step) == "RUN /bin/sh -c echo one\necho two\n # buildkit"


def test_heredoc_with_shebang_becomes_an_executable_file() -> None:
    step = run("RUN <<SCRIPT\n#!/usr/bin/env python3\nprint(1)\nSCRIPT\n")
    assert step.heredoc_files == (
        RunFile(path="/dev/pipes/SCRIPT", data="#!/usr/bin/env python3\nprint(1)\n", mode=0o755),
    )
    assert step.args == ("/bin/sh", "-c", "/dev/pipes/SCRIPT")


def test_chomped_heredoc_drops_leading_tabs() -> None:
    step = run("RUN <<-EOF\n\techo a\n\t\techo b\n\tEOF\n")
    assert step.args == ("/bin/sh", "-c", "echo a\necho b\n")


def test_other_heredoc_shapes_are_rebuilt_for_the_shell() -> None:
    step = run("RUN python3 <<EOF > /out\nprint(1)\nEOF\n")
    assert step.args == ("/bin/sh", "-c", "python3 <<EOF > /out\nprint(1)\nEOF")
    step = run("RUN cat <<A <<B\na\nA\nb\nB\n")
    assert step.args == ("/bin/sh", "-c", "cat <<A <<B\na\nA\nb\nB")


def test_network_security_devices_and_hostname() -> None:
    step = run("RUN --network=none --security=insecure true\n")
    assert (step.network, step.security) == ("none", "insecure")
    assert step.hostname == "buildkitsandbox"
    step = run("RUN true\n", build_args=(("BUILDKIT_SANDBOX_HOSTNAME", "box"),))
    assert step.hostname == "box"


def test_mounts_are_expanded_and_resolved() -> None:
    step = run(
        "ARG T=/cache\nWORKDIR /app\n"
        "RUN --mount=type=cache,target=$T,sharing=locked "
        "--mount=type=cache,target=node_modules "
        "--mount=type=bind,source=src,target=src "
        "--mount=type=tmpfs,target=/tmp,size=64m "
        "--mount=type=secret,id=token "
        "--mount=type=secret,id=aws,env=AWS_KEY "
        "--mount=type=ssh "
        "--mount=type=ssh,id=other "
        "make\n"
    )
    cache, cache_rel, bind, tmpfs, secret, secret_env, ssh0, ssh1 = step.mounts
    assert (cache.target, cache.id, cache.source) == ("/cache", "/cache", FromScratch())
    assert cache.mount.share_mode is ir.ShareMode.LOCKED
    assert (cache_rel.target, cache_rel.id) == ("/app/node_modules", "node_modules")
    assert (bind.target, bind.source, bind.source_path) == ("/app/src", FromContext(), "/src")
    assert bind.mount.readonly
    assert (tmpfs.target, tmpfs.source, tmpfs.mount.size_limit) == ("/tmp", None, 64 << 20)
    assert (secret.id, secret.target) == ("token", "/run/secrets/token")
    assert (secret_env.id, secret_env.target, secret_env.mount.env) == ("aws", "", "AWS_KEY")
    assert (ssh0.id, ssh0.target) == ("default", "/run/buildkit/ssh_agent.0")
    assert (ssh1.id, ssh1.target) == ("other", "/run/buildkit/ssh_agent.1")
    assert step.input_sources == (FromContext(),)


def test_secret_id_defaults_to_the_target_basename() -> None:
    step = run("RUN --mount=type=secret,target=/root/.npmrc true\n")
    assert (step.mounts[0].id, step.mounts[0].target) == (".npmrc", "/root/.npmrc")


def test_run_env_is_image_env_then_args_then_env_in_order() -> None:
    step = run("ARG A=1\nENV B=2\nARG A=3\nRUN true\n")
    assert step.env == ("PATH=/usr/local/bin:/usr/bin:/bin", "B=2", "A=3")
    assert step.cache_env == step.env


def test_step_text_is_the_instruction_with_the_keyword_upper_cased() -> None:
    p = make_plan("from alpine\nrun echo $HOME\ncopy a b\n")
    assert [s.text for s in p.target.steps] == ["RUN echo $HOME", "COPY a b"]


DIGEST = "sha256:" + "0123" * 16


def test_copy_step_fields() -> None:
    stage = target(
        "FROM alpine\nWORKDIR /w\n"
        "COPY --link --parents --exclude=*.md --exclude=tmp --chmod=0644 src/./a dest/\n"
        "ADD --unpack=false --keep-git-dir=true https://github.com/o/r.git#main /r\n"
        f"ADD --checksum={DIGEST} https://example.com/a.tgz /a\n"
    )
    copy, add_git, add_http = stage.steps[1:]
    assert isinstance(copy, CopyStep)
    assert isinstance(add_git, CopyStep)
    assert isinstance(add_http, CopyStep)
    assert (copy.is_add, copy.link, copy.parents, copy.chmod) == (False, True, True, "0644")
    assert copy.excludes == ("*.md", "tmp")
    assert (copy.dest, copy.workdir) == ("dest/", "/w")
    assert copy.sources == (PathSource(path="src/./a"),)
    assert add_git.is_add
    assert add_git.unpack is False
    assert add_git.keep_git_dir is True
    assert add_git.sources == (GitSource(url="https://github.com/o/r.git#main"),)
    assert add_http.sources == (
        UrlSource(url="https://example.com/a.tgz", checksum=Digest.parse(DIGEST)),
    )
    assert add_http.unpack is None
