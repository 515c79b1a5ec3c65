"""Which extended attributes pybuild carries between file trees and layers: one allowlist for
layer extraction (``layer_apply``), layer creation (``layer_write``) and COPY/ADD sources
(``context.sourcefs``). See docs/SECURITY.md, "Extended attributes"."""

from __future__ import annotations


def kept_xattr(name: str) -> bool:
    """Whether the extended attribute ``name`` is carried over (docs/SECURITY.md).

    Allowlist: ``user.*`` and ``security.capability`` (file capabilities, as docker keeps).
    ``trusted.*`` (overlay metadata among them) and the other ``security.*`` names (SELinux
    labels, IMA/EVM signatures) come from whoever made the files and steer the host's kernel,
    so they are dropped; so is ``user.overlay.*``, which overlayfs reads in userxattr mode,
    and ``system.*`` (POSIX ACLs).
    """
    if name.startswith("user."):
        return not name.startswith("user.overlay.")
    return name == "security.capability"
