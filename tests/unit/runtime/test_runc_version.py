"""The runc version warning: Debian version ordering, backports by package version, CVEs named."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from builder.runtime.oci import Runc
from builder.runtime.runc_version import (
    ADVISORIES,
    compare_debian_versions,
    is_fixed,
    runc_warnings,
    upstream_version,
)

CVES_2025 = "CVE-2025-31133, CVE-2025-52565, CVE-2025-52881"


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        ("1.1.5+ds1-1+deb12u1", "1.1.5+ds1-1", 1),
        ("1.1.5+ds1-1+deb12u2", "1.1.5+ds1-1+deb12u10", -1),
        ("1.1.5+ds1-1+deb12u1", "1.1.5+ds1-1+deb12u1", 0),
        ("1.1.15+ds1-2", "1.1.5+ds1-1+deb12u1", 1),
        ("1.3.3+ds1-1", "1.3.3~rc1+ds1-1", 1),
        ("1.2.8~rc1-1", "1.2.8-1", -1),
        ("1:1.0-1", "2.0-1", 1),
        ("1.0-1", "1.0-1~bpo12+1", 1),
        ("1.1.12-0ubuntu2~22.04.1", "1.1.12-0ubuntu3", -1),
        ("1.2a", "1.2+", -1),
        ("1.2", "1.2a", -1),
        ("1.01", "1.1", 0),
        ("1.0+dfsg", "1.0", 1),
    ],
)
def test_debian_version_ordering(a: str, b: str, want: int) -> None:
    assert compare_debian_versions(a, b) == want
    assert compare_debian_versions(b, a) == -want


def test_upstream_version_strips_epoch_and_revision() -> None:
    assert upstream_version("1:1.1.5+ds1-1+deb12u1") == "1.1.5+ds1"
    assert upstream_version("1.3.3") == "1.3.3"


@pytest.mark.parametrize(
    ("version", "package", "fixed_2024", "fixed_2025"),
    [
        ((1, 1, 5), "1.1.5+ds1-1+deb12u1", True, False),  # Debian 12's CVE-2024-21626 backport
        ((1, 1, 5), "1.1.5+ds1-1", False, False),
        ((1, 1, 5), "1.1.5+ds1-1+deb11u1", False, False),  # no known backport for that release
        ((1, 1, 11), None, False, False),
        ((1, 1, 12), None, True, False),
        ((1, 1, 15), "1.1.15+ds1-2", True, False),
        ((1, 2, 7), None, True, False),
        ((1, 2, 8), None, True, True),
        ((1, 3, 0), None, True, False),
        ((1, 3, 2), None, True, False),
        ((1, 3, 3), "1.3.3+ds1-1", True, True),
        ((1, 4, 0), None, True, True),
        ((2, 0, 0), None, True, True),
    ],
)
def test_fixed_releases(
    version: tuple[int, int, int], package: str | None, fixed_2024: bool, fixed_2025: bool
) -> None:
    older, newer = ADVISORIES
    assert is_fixed(older, version, package) is fixed_2024
    assert is_fixed(newer, version, package) is fixed_2025


def test_debian_backport_is_recognised_by_package_version() -> None:
    """A Debian release listed for an advisory is fixed from that package version on, whatever
    its upstream version; the same upstream without the security upload is not."""
    advisory = ADVISORIES[0]
    assert is_fixed(advisory, (1, 1, 5), "1.1.5+ds1-1+deb12u3")
    assert not is_fixed(advisory, (1, 1, 5), "1.1.5+ds1-1+deb12u0")


def test_warning_names_the_cves_and_the_package() -> None:
    printed = "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\n"
    assert runc_warnings(printed, "1.1.5+ds1-1+deb12u1") == (
        "runc 1.1.5+ds1 (package 1.1.5+ds1-1+deb12u1) is older than 1.2.8 / 1.3.3, which fix"
        f" {CVES_2025}; update runc or make sure your distribution backported the fixes",
    )


def test_old_runc_names_both_advisories() -> None:
    warnings = runc_warnings("runc version 1.1.11\ncommit: v1.1.11-0-g4bccb38\n", None)
    assert [w.split("which fix ")[1].split(";")[0] for w in warnings] == [
        "CVE-2024-21626",
        CVES_2025,
    ]


def test_a_substring_does_not_pass_for_a_backport() -> None:
    """The old check accepted any output containing ``deb12u1``; now only the package counts."""
    printed = "runc version 1.1.5\ncommit: deb12u1-lookalike\n"
    assert len(runc_warnings(printed, None)) == 2


def test_package_of_another_runc_is_ignored() -> None:
    """A runc in /usr/local is judged by its own version, not by the Debian package beside it."""
    warnings = runc_warnings("runc version 1.1.5\n", "1.1.5+ds1-1+deb12u1")
    assert len(warnings) == 2
    assert "(package" not in warnings[0]


@pytest.mark.parametrize(
    "printed", ["runc version 1.2.8\n", "runc version 1.3.3\n", "runc version 1.4.0-rc.3\n", ""]
)
def test_fixed_or_unknown_runc_gives_no_warning(printed: str) -> None:
    assert runc_warnings(printed, None) == ()


def test_check_reports_the_installed_runc() -> None:
    """``Runc.check`` judges the runc and the Debian package installed here."""
    exe = shutil.which("runc")
    assert exe is not None
    printed = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    dpkg = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "runc"],
        capture_output=True,
        text=True,
        check=False,
    )
    package = dpkg.stdout.strip() if dpkg.returncode == 0 and dpkg.stdout.strip() else None
    assert Runc().check() == runc_warnings(printed, package)
