"""Checklist cases 1-4 (docs/SECURITY.md section 3, Parser): hostile Dockerfile text through the
real CLI ends in one located error line, and the store stays consistent."""

from __future__ import annotations

import pytest
from advkit import Sentinels, assert_clean_error, assert_store_consistent, rerun_succeeds
from enginekit import Builder

pytestmark = pytest.mark.integration

GOOD = "FROM busybox\nRUN echo adversarial-parse-ok > /ok\n"


def test_case_01_line_over_65535_bytes(pb: Builder, sentinels: Sentinels) -> None:
    dockerfile = "FROM busybox\nRUN echo " + "a" * 70000 + "\n"
    built = pb.build(dockerfile, check=False)
    line = assert_clean_error(built, must_name="Dockerfile:2")
    assert "line greater than max allowed size" in line
    assert_store_consistent(pb.store_root)
    rerun_succeeds(pb, GOOD)
