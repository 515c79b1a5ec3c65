"""Entitlements: what a build must be granted with ``--allow`` before it may run (BuildKit's).

``network.host`` lets RUN steps use the host's network namespace (``RUN --network=host`` or
``--network host`` for the whole build); ``security.insecure`` lets ``RUN --security=insecure``
run privileged. Since CVE-2024-23653 BuildKit checks these before anything runs, for cached
steps too; so does :func:`check`, on the plan.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from builder.errors import BuildError, ExecutionError
from builder.plan.steps import BuildPlan, RunStep


class Entitlement(enum.StrEnum):
    NETWORK_HOST = "network.host"
    SECURITY_INSECURE = "security.insecure"


def parse_entitlements(values: Iterable[str]) -> frozenset[Entitlement]:
    """``--allow`` values (each may be a comma-separated list, as buildx accepts)."""
    out: set[Entitlement] = set()
    for value in values:
        for item in value.split(","):
            name = item.strip()
            try:
                out.add(Entitlement(name))
            except ValueError:
                raise BuildError(f"unknown entitlement {name}") from None
    return frozenset(out)


def _denied(entitlement: Entitlement) -> str:
    return f"entitlement {entitlement} is not allowed"


def _hint(entitlement: Entitlement) -> str:
    return f"grant it with --allow {entitlement} if you trust this Dockerfile"


def check(plan: BuildPlan, allowed: frozenset[Entitlement], *, default_network: str) -> None:
    """Raise at the first step (or build option) that needs an entitlement not granted."""
    if default_network == "host" and Entitlement.NETWORK_HOST not in allowed:
        raise BuildError(
            _denied(Entitlement.NETWORK_HOST) + " (--network host)",
            hint=_hint(Entitlement.NETWORK_HOST),
        )
    for stage in plan.stages:
        for step in stage.steps:
            if not isinstance(step, RunStep):
                continue
            needed: list[Entitlement] = []
            if step.network == "host":
                needed.append(Entitlement.NETWORK_HOST)
            if step.security == "insecure":
                needed.append(Entitlement.SECURITY_INSECURE)
            for entitlement in needed:
                if entitlement not in allowed:
                    raise ExecutionError(
                        _denied(entitlement), span=step.span, hint=_hint(entitlement)
                    )
