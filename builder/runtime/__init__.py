"""OCI runtime configuration and execution (runc/crun), and USER resolution."""

from __future__ import annotations

from builder.runtime.oci import Crun, ExitStatus, Runc, Runtime
from builder.runtime.spec import Resources, build_spec
from builder.runtime.users import ResolvedUser, resolve_user

__all__ = [
    "Crun",
    "ExitStatus",
    "ResolvedUser",
    "Resources",
    "Runc",
    "Runtime",
    "build_spec",
    "resolve_user",
]
