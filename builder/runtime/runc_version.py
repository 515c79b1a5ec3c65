"""Whether the installed runc carries the fixes pybuild relies on, for the runtime's warning.

Upstream fixes are ranges of runc releases; distributions backport fixes into older releases,
so a Debian package is judged by its package version (``dpkg-query``), compared with Debian's
ordering rules (``deb-version(7)``: epoch, then upstream version, then revision; ``~`` sorts
before everything, letters before other characters, digit runs numerically).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_DIGITS: Final = "0123456789"
_LETTERS: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PRINTED: Final = re.compile(r"runc version (\S+)")
_TRIPLE: Final = re.compile(r"(\d+)\.(\d+)\.(\d+)")
_DEBIAN_SUITE: Final = re.compile(r"\+(deb\d+)u\d+")


@dataclass(frozen=True, slots=True, kw_only=True)
class Advisory:
    """CVEs fixed in runc: ``fixed`` holds the first fixed release of each maintained line
    (a release is fixed when it is at least the fix of its ``major.minor`` line, or newer than
    every line listed); ``debian`` maps a Debian release (``deb12``) to the first package
    version carrying the backported fix."""

    cves: tuple[str, ...]
    fixed: tuple[tuple[int, int, int], ...]
    debian: tuple[tuple[str, str], ...] = ()


ADVISORIES: Final = (
    # Debian's 1.1.5+ds1-1+deb12u1 carries the CVE-2024-21626 fix.
    Advisory(
        cves=("CVE-2024-21626",), fixed=((1, 1, 12),), debian=(("deb12", "1.1.5+ds1-1+deb12u1"),)
    ),
    # Fixed upstream in 1.2.8 and 1.3.3 (and 1.4.0). Add a Debian release here once its
    # security tracker names the fixed package version.
    Advisory(
        cves=("CVE-2025-31133", "CVE-2025-52565", "CVE-2025-52881"), fixed=((1, 2, 8), (1, 3, 3))
    ),
)


def _order(char: str) -> int:
    if char == "~":
        return -1
    if char in _LETTERS:
        return ord(char)
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    """dpkg's ``verrevcmp`` on one part (upstream version or revision): -1, 0 or 1."""
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and a[i] not in _DIGITS) or (j < len(b) and b[j] not in _DIGITS):
            ac = _order(a[i]) if i < len(a) and a[i] not in _DIGITS else 0
            bc = _order(b[j]) if j < len(b) and b[j] not in _DIGITS else 0
            if ac != bc:
                return -1 if ac < bc else 1
            i += 1
            j += 1
        start_i, start_j = i, j
        while i < len(a) and a[i] in _DIGITS:
            i += 1
        while j < len(b) and b[j] in _DIGITS:
            j += 1
        na, nb = int(a[start_i:i] or "0"), int(b[start_j:j] or "0")
        if na != nb:
            return -1 if na < nb else 1
    return 0


def _split(version: str) -> tuple[int, str, str]:
    epoch, colon, rest = version.strip().partition(":")
    if not colon:
        epoch, rest = "0", epoch
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        upstream, revision = revision, ""
    return int(epoch) if epoch.isascii() and epoch.isdigit() else 0, upstream, revision


def compare_debian_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as Debian package version ``a`` sorts before, equal to or after ``b``."""
    epoch_a, up_a, rev_a = _split(a)
    epoch_b, up_b, rev_b = _split(b)
    if epoch_a != epoch_b:
        return -1 if epoch_a < epoch_b else 1
    return _compare_part(up_a, up_b) or _compare_part(rev_a, rev_b)


def upstream_version(package_version: str) -> str:
    """The upstream part of a Debian package version (no epoch, no revision)."""
    return _split(package_version)[1]


def _fixed_upstream(version: tuple[int, int, int], advisory: Advisory) -> bool:
    for fix in advisory.fixed:
        if version[:2] == fix[:2]:
            return version >= fix
    return version[:2] > max(fix[:2] for fix in advisory.fixed)


def is_fixed(advisory: Advisory, version: tuple[int, int, int], package: str | None) -> bool:
    """Whether runc ``version`` (from the Debian ``package`` version, when known) is fixed."""
    if package is not None and (suite := _DEBIAN_SUITE.search(package)) is not None:
        first = dict(advisory.debian).get(suite.group(1))
        if first is not None and compare_debian_versions(package, first) >= 0:
            return True
    return _fixed_upstream(version, advisory)


def runc_warnings(printed: str, package: str | None) -> tuple[str, ...]:
    """Warnings for ``runc --version`` output ``printed``; ``package`` is the version of the
    ``runc`` Debian package, used only when it is the binary that printed ``printed``."""
    shown = _PRINTED.search(printed)
    triple = _TRIPLE.search(shown.group(1) if shown else printed)
    if triple is None:
        return ()
    version = (int(triple.group(1)), int(triple.group(2)), int(triple.group(3)))
    name = shown.group(1) if shown else ".".join(map(str, version))
    if package is not None and (shown is None or upstream_version(package) != shown.group(1)):
        package = None  # another runc than the packaged one
    described = f"runc {name}" + (f" (package {package})" if package else "")
    warnings: list[str] = []
    for advisory in ADVISORIES:
        if not is_fixed(advisory, version, package):
            fixes = " / ".join(".".join(map(str, fix)) for fix in advisory.fixed)
            warnings.append(
                f"{described} is older than {fixes}, which fix {', '.join(advisory.cves)};"
                " update runc or make sure your distribution backported the fixes"
            )
    return tuple(warnings)


__all__ = [
    "ADVISORIES",
    "Advisory",
    "compare_debian_versions",
    "is_fixed",
    "runc_warnings",
    "upstream_version",
]
