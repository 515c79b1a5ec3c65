"""Every file and directory the engine and the commands create under the store root is named
in ``builder.store.paths`` (so ``pybuild fsck`` and ``pybuild prune`` know it)."""

from __future__ import annotations

import pytest
from enginekit import Builder

from builder.store import Store, paths
from builder.store.fsck import fsck

pytestmark = pytest.mark.integration


def test_every_entry_of_the_store_root_is_named_in_one_place(pb: Builder) -> None:
    tag = pb.new_tag()
    pb.build(
        f"FROM busybox\n"
        f"RUN --mount=type=cache,target=/c echo {tag} > /c/seen\n"
        f"RUN --mount=type=bind,source=a,target=/a cat /a\n"
        f"COPY a /\n",
        {"a": tag},
    )
    pb.cli("run", "busybox", "true", check=True)
    pb.cli("run", "--runtime", "crun", "busybox", "true")  # crun may refuse hybrid cgroups
    pb.cli("images", check=True)
    entries = {p.name for p in pb.store_root.iterdir()}
    assert entries <= paths.known_entries()
    # what these commands make beyond Store.open's directories
    assert {"buildinfo", "cachemounts", "contexts", "sizes", "runc", "crun"} <= entries
    report = fsck(Store.open(pb.store_root))
    assert [p for p in report.problems if p.kind == "stray"] == []
