"""RUN ``--mount`` options planned as BuildKit's ``dispatchRunMounts`` does.

A relative target joins the working directory; secret and ssh mounts get BuildKit's default
targets and ids; cache mounts are identified by ``id`` or their cleaned target. Failures raise
:class:`~builder.errors.InvalidInstructionError` without a span; the planner adds the
instruction's.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from typing import assert_never

from builder.errors import InvalidInstructionError
from builder.fs import paths
from builder.plan.steps import RunMount, Source
from builder.syntax import ir
from builder.syntax.gotext import go_quote


def plan_mounts(
    mounts: Sequence[ir.Mount], *, workdir: str, source_of: Callable[[ir.Mount], Source]
) -> tuple[RunMount, ...]:
    """The mounts of a RUN; ``source_of`` says where a mount's files come from."""
    out: list[RunMount] = []
    ssh_count = 0
    for mount in mounts:
        source = source_of(mount)
        raw_target = mount.target or ""
        match mount.type:
            case ir.MountType.SECRET:
                secret_id = mount.id or ""
                if mount.source:
                    secret_id = mount.source
                if not secret_id:
                    if not raw_target:
                        raise InvalidInstructionError("one of source, target required")
                    secret_id = posixpath.basename(raw_target.rstrip("/")) or "/"
                target = raw_target
                if mount.env is None and not target:
                    target = "/run/secrets/" + (posixpath.basename(secret_id.rstrip("/")) or "/")
                out.append(RunMount(mount=mount, target=target, id=secret_id))
                continue
            case ir.MountType.SSH:
                if mount.source:
                    raise InvalidInstructionError("ssh does not support source")
                target = raw_target or f"/run/buildkit/ssh_agent.{ssh_count}"
                ssh_count += 1
                out.append(RunMount(mount=mount, target=target, id=mount.id or "default"))
                continue
            case ir.MountType.BIND | ir.MountType.CACHE | ir.MountType.TMPFS:
                pass
            case _:
                assert_never(mount.type)
        target = raw_target
        if not paths.clean(target).startswith("/"):
            target = paths.join("/", workdir, target)
        if target == "/":
            raise InvalidInstructionError(f"invalid mount target {go_quote(target)}")
        if mount.type is ir.MountType.TMPFS:
            out.append(RunMount(mount=mount, target=target))
            continue
        cache_id = None
        if mount.type is ir.MountType.CACHE:
            cache_id = mount.id or paths.clean(raw_target)
        out.append(
            RunMount(
                mount=mount,
                target=target,
                source=source,
                source_path=paths.join("/", mount.source or ""),
                id=cache_id,
            )
        )
    return tuple(out)
