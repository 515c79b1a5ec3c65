"""Mount points as /proc/self/mountinfo writes them: octal escapes undone, plain fields kept."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from builder.snapshot.overlay import _unescape_mountinfo


def _escape(path: str) -> str:
    """What the kernel writes for ``path`` (show_path escapes space, tab, newline, backslash)."""
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in path)


def test_escapes_are_undone_and_plain_fields_kept() -> None:
    assert _unescape_mountinfo("/var/lib/pybuild/snapshots/.ovl-x/m") == (
        "/var/lib/pybuild/snapshots/.ovl-x/m"
    )
    assert _unescape_mountinfo("/a\\040b\\011c\\134d") == "/a b\tc\\d"


@given(st.text(alphabet=st.sampled_from("/ab \t\n\\é"), max_size=30))
def test_unescaping_inverts_the_kernel_escaping(path: str) -> None:
    assert _unescape_mountinfo(_escape(path)) == path
