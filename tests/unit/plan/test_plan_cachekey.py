"""Cache payloads and keys: canonical, stable under reordering, sensitive to every field."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from planfixtures import make_plan, target

from builder.digest import Digest
from builder.errors import Span
from builder.oci.types import History
from builder.plan import (
    ConfigStep,
    CopyStep,
    FromContext,
    FromStage,
    GitSource,
    InlineFile,
    PathSource,
    RunMount,
    RunStep,
    UrlSource,
    WorkdirStep,
    cache_key,
    describe_inputs,
    step_cache_payload,
)
from builder.syntax import ir

SPAN = Span(file="Dockerfile", line=1)
HIST = History(created_by="x")
PARENT = Digest.of_bytes(b"parent")

words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
names = st.from_regex(r"[A-Z_][A-Z0-9_]{0,6}", fullmatch=True)
envs = st.dictionaries(names, words, max_size=6)


def run_step(env: dict[str, str], **kw: object) -> RunStep:
    items = tuple(f"{k}={v}" for k, v in env.items())
    fields: dict[str, object] = {
        "span": SPAN,
        "text": "RUN x",
        "history": HIST,
        "args": ("/bin/sh", "-c", "x"),
        "env": items,
        "cache_env": items,
        "user": "",
        "workdir": "/",
    }
    fields.update(kw)
    return RunStep(**fields)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(env=envs, seed=st.integers(0, 2**32))
def test_run_key_is_stable_under_env_order(env: dict[str, str], seed: int) -> None:
    items = list(env.items())
    random.Random(seed).shuffle(items)
    shuffled = dict(items)
    a, b = run_step(env), run_step(shuffled)
    assert step_cache_payload(a) == step_cache_payload(b)
    assert cache_key(step_cache_payload(a), PARENT, ()) == cache_key(
        step_cache_payload(b), PARENT, ()
    )


@settings(max_examples=60, deadline=None)
@given(env=envs, seed=st.integers(0, 2**32))
def test_key_is_stable_under_payload_dict_order(env: dict[str, str], seed: int) -> None:
    payload = step_cache_payload(run_step(env))
    items = list(payload.items())
    random.Random(seed).shuffle(items)
    assert cache_key(dict(items), None, ()) == cache_key(payload, None, ())


def _canonical(payload: object) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_key_is_sha256_of_the_canonical_document() -> None:
    payload = step_cache_payload(run_step({"A": "1"}))
    inputs = (Digest.of_bytes(b"in"),)
    document = {"op": payload, "parent": str(PARENT), "inputs": [str(d) for d in inputs]}
    assert cache_key(payload, PARENT, inputs) == Digest.of_bytes(_canonical(document))
    assert cache_key(payload, PARENT, inputs) != cache_key(payload, None, inputs)
    assert cache_key(payload, PARENT, inputs) != cache_key(payload, PARENT, ())


MOUNT = RunMount(
    mount=ir.Mount(spec="type=cache,target=/c", type=ir.MountType.CACHE, target="/c"),
    target="/c",
    id="/c",
)
RUN_CHANGES: dict[str, Any] = {
    "args": ("/bin/sh", "-c", "y"),
    "cache_env": ("A=2",),
    "user": "nobody",
    "workdir": "/app",
    "mounts": (MOUNT,),
    "network": "none",
    "security": "insecure",
    "devices": (ir.Device(name="gpu"),),
    "heredoc_files": (),
    "hostname": "other",
}


@settings(max_examples=40, deadline=None)
@given(env=envs, field=st.sampled_from(sorted(RUN_CHANGES)))
def test_run_key_changes_when_any_field_changes(env: dict[str, str], field: str) -> None:
    base = run_step(env)
    changed = replace(base, **{field: RUN_CHANGES[field]})
    if field == "heredoc_files":
        from builder.plan import RunFile

        changed = replace(base, heredoc_files=(RunFile(path="/dev/pipes/E", data="#!x"),))
    key = cache_key(step_cache_payload(base), PARENT, ())
    assert cache_key(step_cache_payload(changed), PARENT, ()) != key


def test_run_key_ignores_span_text_history_and_process_only_env() -> None:
    base = run_step({"A": "1"})
    other = replace(
        base,
        span=Span(file="other", line=9),
        text="RUN something else",
        history=History(created_by="other"),
        onbuild=True,
        env=(*base.env, "HTTP_PROXY=http://p", "http_proxy=http://p"),
    )
    assert step_cache_payload(other) == step_cache_payload(base)


def copy_step(**kw: Any) -> CopyStep:
    base = CopyStep(
        span=SPAN,
        text="COPY a /b",
        history=HIST,
        is_add=False,
        sources=(PathSource(path="a"),),
        dest="/b",
        workdir="/",
        source=FromContext(),
    )
    return replace(base, **kw)


COPY_CHANGES: dict[str, Any] = {
    "is_add": True,
    "sources": (PathSource(path="a"), PathSource(path="c")),
    "dest": "/c",
    "workdir": "/w",
    "source": FromStage(index=0),
    "inline_files": (InlineFile(name="EOF", data="x"),),
    "chown": "1:1",
    "chmod": "0600",
    "link": True,
    "parents": True,
    "excludes": ("*.md",),
    "unpack": False,
    "keep_git_dir": True,
}


@settings(max_examples=30, deadline=None)
@given(field=st.sampled_from(sorted(COPY_CHANGES)))
def test_copy_key_changes_when_any_field_changes(field: str) -> None:
    base = copy_step()
    changed = replace(base, **{field: COPY_CHANGES[field]})
    assert cache_key(step_cache_payload(changed), None, ()) != cache_key(
        step_cache_payload(base), None, ()
    )


def test_source_kind_and_checksum_are_part_of_the_key() -> None:
    url = "https://example.com/f"
    pinned = UrlSource(url=url, checksum=Digest.of_bytes(b"f"))
    payloads = [
        step_cache_payload(copy_step(is_add=True, sources=(source,)))
        for source in (PathSource(path=url), UrlSource(url=url), pinned, GitSource(url=url))
    ]
    assert payloads[1]["checksum"] is None
    assert payloads[2]["checksum"] == str(pinned.checksum)
    assert len({cache_key(p, None, ()) for p in payloads[1:3]}) == 2


def test_inline_file_content_is_part_of_the_key() -> None:
    a = copy_step(inline_files=(InlineFile(name="EOF", data="one"),))
    b = copy_step(inline_files=(InlineFile(name="EOF", data="two"),))
    assert step_cache_payload(a) != step_cache_payload(b)


def test_workdir_and_config_payloads() -> None:
    wd = WorkdirStep(span=SPAN, text="WORKDIR /a", history=HIST, path="/a", user="u")
    assert step_cache_payload(wd) == {"v": 1, "kind": "workdir", "path": "/a", "user": "u"}
    assert step_cache_payload(replace(wd, user="")) != step_cache_payload(wd)
    cfg = ConfigStep(span=SPAN, text="ENV A=1", history=HIST, instruction="ENV")
    assert step_cache_payload(cfg)["kind"] == "config"


def test_planned_steps_have_stable_keys_across_plans() -> None:
    text = "FROM alpine\nARG V=1\nENV E=$V\nRUN echo $E\nCOPY . /src\n"
    a = make_plan(text).target.steps
    b = make_plan(text).target.steps
    assert [step_cache_payload(s) for s in a] == [step_cache_payload(s) for s in b]
    c = make_plan(text, build_args=(("V", "2"),)).target.steps
    assert step_cache_payload(a[2]) != step_cache_payload(c[2])  # the RUN sees V and E
    assert step_cache_payload(a[3]) == step_cache_payload(c[3])  # COPY does not use them


def test_secret_and_cache_mount_contents_are_not_in_the_payload() -> None:
    step = target(
        "FROM alpine\nRUN --mount=type=secret,id=tok --mount=type=cache,target=/c true\n"
    ).steps[0]
    payload = step_cache_payload(step)
    mounts = payload["mounts"]
    assert isinstance(mounts, list)
    assert mounts[0] == {
        "type": "secret",
        "target": "/run/secrets/tok",
        "readonly": True,
        "id": "tok",
        "env": None,
        "required": False,
        "mode": None,
        "uid": None,
        "gid": None,
    }
    assert mounts[1]["id"] == "/c"
    assert mounts[1]["from"] == {"kind": "scratch"}


def test_ssh_mount_id_is_in_the_payload_and_nothing_of_the_agent() -> None:
    def payload(mount: str) -> object:
        step = target(f"FROM alpine\nRUN --mount=type=ssh{mount} true\n").steps[0]
        mounts = step_cache_payload(step)["mounts"]
        assert isinstance(mounts, list)
        return mounts[0]

    assert payload("") == {
        "type": "ssh",
        "target": "/run/buildkit/ssh_agent.0",
        "readonly": True,
        "id": "default",
        "required": False,
        "mode": None,
        "uid": None,
        "gid": None,
    }
    assert payload(",id=deploy") != payload("")


def test_a_cache_mount_from_a_stage_reads_that_stage() -> None:
    steps = make_plan(
        "FROM alpine AS deps\nRUN true\nFROM alpine\n"
        "RUN --mount=type=cache,target=/c,from=deps,source=/root x\n"
        "RUN --mount=type=cache,target=/c x\n"
    ).target.steps
    seeded, plain = steps[-2], steps[-1]
    assert seeded.input_sources == (FromStage(index=0),)
    assert plain.input_sources == ()


def test_describe_inputs_names_each_variable() -> None:
    step = target("FROM alpine\nARG V=1\nENV E=two\nRUN --mount=type=tmpfs,target=/t x\n").steps[-1]
    inputs = dict(describe_inputs(step))
    assert inputs["env V"] == "1"
    assert inputs["env E"] == "two"
    assert inputs["args"] == '["/bin/sh","-c","x"]'
    assert inputs["mount /t"].startswith("{")
    before = dict(describe_inputs(make_plan("FROM alpine\nARG V=1\nRUN x\n").target.steps[-1]))
    after = dict(
        describe_inputs(
            make_plan("FROM alpine\nARG V=1\nRUN x\n", build_args=(("V", "2"),)).target.steps[-1]
        )
    )
    assert {k for k in before if before[k] != after.get(k)} == {"env V"}
