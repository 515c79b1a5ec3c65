"""Cache payloads and keys of planned steps.

:func:`step_cache_payload` is a canonical, JSON-able description of everything that defines a
step's operation, and nothing else: no spans, no display text, no undeclared proxy build-args,
no secret or cache-mount contents. :func:`cache_key` hashes it with the parent key and the
content digests of the step's inputs (see ``Step.input_sources``): the sha256 of the canonical
JSON (sorted keys, compact separators) of ``{"op": payload, "parent": ..., "inputs": [...]}``.
For ``COPY --link`` the scheduler passes ``parent=None``: the result does not depend on the
layers below.
"""

from __future__ import annotations

import json
from typing import assert_never

from builder.digest import Digest
from builder.oci.types import canonical_json
from builder.plan.steps import (
    ConfigStep,
    CopyStep,
    FromContext,
    FromImage,
    FromScratch,
    FromStage,
    GitSource,
    RunMount,
    RunStep,
    Source,
    Step,
    UrlSource,
    WorkdirStep,
    source_text,
)
from builder.syntax import ir

PAYLOAD_VERSION = 1

Json = dict[str, object]


def _source(source: Source | None) -> Json | None:
    """Where files come from; a stage or the context is identified by its content digest,
    which the scheduler passes as an input, so only the kind is part of the op."""
    match source:
        case None:
            return None
        case FromContext():
            return {"kind": "context"}
        case FromStage():
            return {"kind": "stage"}
        case FromImage():
            return {"kind": "image", "ref": source.image.ref, "digest": str(source.image.digest)}
        case FromScratch():
            return {"kind": "scratch"}
        case _:
            assert_never(source)


def _checksum(step: CopyStep) -> str | None:
    """ADD's ``--checksum`` as written (it pins the one URL or git source)."""
    for source in step.sources:
        match source:
            case UrlSource() if source.checksum is not None:
                return str(source.checksum)
            case GitSource() if source.checksum is not None:
                return source.checksum
    return None


def _mount(m: RunMount) -> Json:
    mount = m.mount
    out: Json = {
        "type": mount.type.value,
        "target": m.target,
        "readonly": mount.readonly,
    }
    match mount.type:
        case ir.MountType.BIND:
            out["from"] = _source(m.source)
            out["source"] = m.source_path
        case ir.MountType.CACHE:
            out["from"] = _source(m.source)
            out["source"] = m.source_path
            out["id"] = m.id
            out["sharing"] = mount.share_mode.value
            out["mode"] = mount.mode
            out["uid"] = mount.uid
            out["gid"] = mount.gid
        case ir.MountType.TMPFS:
            out["size"] = mount.size_limit
        case ir.MountType.SECRET:
            out["id"] = m.id
            out["env"] = mount.env
            out["required"] = mount.required
            out["mode"] = mount.mode
            out["uid"] = mount.uid
            out["gid"] = mount.gid
        case ir.MountType.SSH:
            out["id"] = m.id
            out["required"] = mount.required
            out["mode"] = mount.mode
            out["uid"] = mount.uid
            out["gid"] = mount.gid
        case _:
            assert_never(mount.type)
    return out


def step_cache_payload(step: Step) -> Json:
    """The canonical description of ``step``'s operation (see the module docstring)."""
    match step:
        case RunStep():
            return {
                "v": PAYLOAD_VERSION,
                "kind": "run",
                "args": list(step.args),
                "env": sorted(step.cache_env),
                "user": step.user,
                "workdir": step.workdir,
                "mounts": [_mount(m) for m in step.mounts],
                "network": step.network,
                "security": step.security,
                "devices": [[d.name, d.required] for d in step.devices],
                "files": [[f.path, f.data, f.mode] for f in step.heredoc_files],
                "hostname": step.hostname,
            }
        case CopyStep():
            return {
                "v": PAYLOAD_VERSION,
                "kind": "add" if step.is_add else "copy",
                "sources": [source_text(s) for s in step.sources],
                "inline": [[f.name, f.data, f.mode] for f in step.inline_files],
                "dest": step.dest,
                "workdir": step.workdir,
                "from": _source(step.source),
                "chown": step.chown,
                "chmod": step.chmod,
                "link": step.link,
                "parents": step.parents,
                "excludes": list(step.excludes),
                "checksum": _checksum(step),
                "unpack": step.unpack,
                "keep_git_dir": step.keep_git_dir,
            }
        case WorkdirStep():
            return {"v": PAYLOAD_VERSION, "kind": "workdir", "path": step.path, "user": step.user}
        case ConfigStep():
            return {
                "v": PAYLOAD_VERSION,
                "kind": "config",
                "created_by": None if step.history is None else step.history.created_by,
            }
        case _:
            assert_never(step)


def cache_key(payload: Json, parent: Digest | None, inputs: tuple[Digest, ...]) -> Digest:
    """sha256 of the canonical JSON of the op, the parent key and the input digests."""
    document = {
        "op": payload,
        "parent": None if parent is None else str(parent),
        "inputs": [str(d) for d in inputs],
    }
    return Digest.of_bytes(canonical_json(document))


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def describe_inputs(step: Step) -> tuple[tuple[str, str], ...]:
    """Named values of the payload: ``("env NAME", value)`` per variable, one pair per
    mount (``"mount TARGET"``) and per other field; diff two of these to explain a miss."""
    out: list[tuple[str, str]] = []
    for key, value in step_cache_payload(step).items():
        if key in ("v", "kind"):
            continue
        if key == "env" and isinstance(value, list):
            for item in value:
                name, _, val = str(item).partition("=")
                out.append((f"env {name}", val))
        elif key == "mounts" and isinstance(value, list):
            for mount in value:
                target = mount.get("target", "") if isinstance(mount, dict) else ""
                out.append((f"mount {target}", _text(mount)))
        else:
            out.append((key, _text(value)))
    return tuple(out)


__all__ = ["PAYLOAD_VERSION", "cache_key", "describe_inputs", "step_cache_payload"]
