"""Fuzz targets (issue 13, item 7): the Dockerfile parser, the variable expander,
``.dockerignore`` matching, image references, the tar reader and the layer applier, fed random
and mutated inputs. Each raises only pybuild's own errors (``BuildError`` subclasses), ends
within ``INPUT_SECONDS`` (a SIGALRM watchdog per input) and writes nothing outside its root.
``make fuzz`` runs them with many more examples (tests/property/fuzzing.py)."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from pathlib import Path

from fuzzing import fuzz_settings, mutated, outcome
from hypothesis import given
from hypothesis import strategies as st

from builder.context.ignore import PatternMatcher, parse_ignore_file
from builder.oci.layer_apply import apply_layer
from builder.oci.tarformat import TarLimits, TarReader
from builder.reference import parse as parse_reference
from builder.syntax.expand import Lexer
from builder.syntax.parser import parse
from builder.syntax.transform import to_ir
from tests.conftest import BUILDKIT_GOLDEN

PARSER_SEEDS = [
    p.read_bytes()
    for d in ("testfiles", "testfiles-negative")
    for p in sorted((BUILDKIT_GOLDEN / "parser" / d).glob("*/Dockerfile"))
]
SHELL_SEEDS = [
    line.split("|")[1].strip().encode()
    for name in ("envVarTest", "wordsTest")
    for line in (BUILDKIT_GOLDEN / "shell" / name).read_text(encoding="utf-8").splitlines()
    if line and not line.startswith(("#", "ENV ")) and line.count("|") >= 1
]
IGNORE_SEEDS = [
    b"*.md\n!README.md\n**/node_modules\n# comment\n/abs/../x\n",
    b"\xef\xbb\xbf**\n!keep/**/*.go\n[a-c]?.txt\n\\*literal\n",
    b"a/**/b/**\n!a/**/b/c\n[^x]*\n[\\]]\n**/.git\n",
]
REFERENCE_SEEDS = [
    b"busybox",
    b"docker.io/library/alpine:3.19",
    b"localhost:5000/a/b-c_d.e:tag@sha256:" + b"a" * 64,
    b"[::1]:5000/x@sha256:" + b"0" * 64,
    b"ghcr.io/owner/repo:v1.2.3-rc.1",
]


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


# --------------------------------------------------------------------------- parser


@fuzz_settings(150)
@given(st.one_of(mutated(PARSER_SEEDS), st.binary(max_size=400)))
def test_parser_raises_only_build_errors(data: bytes) -> None:
    outcome(lambda: to_ir(parse(_text(data))))


# --------------------------------------------------------------------------- expander


@fuzz_settings(200)
@given(
    word=st.one_of(mutated(SHELL_SEEDS, max_edits=4), st.binary(max_size=200)),
    escape=st.sampled_from(["\\", "`"]),
    env=st.dictionaries(st.sampled_from(["a", "PWD", "X_1", "e"]), st.text(max_size=8)),
)
def test_expander_raises_only_build_errors(word: bytes, escape: str, env: dict[str, str]) -> None:
    lexer = Lexer(escape=escape)
    outcome(lambda: lexer.process_word(_text(word), env))
    outcome(lambda: lexer.process_words(_text(word), env))


# --------------------------------------------------------------------------- .dockerignore


@fuzz_settings(150)
@given(
    data=st.one_of(mutated(IGNORE_SEEDS), st.binary(max_size=300)),
    path=st.lists(
        st.sampled_from(["a", "b", "node_modules", ".git", "x.md", "[", "*"]),
        min_size=1,
        max_size=6,
    ).map("/".join),
)
def test_dockerignore_raises_only_build_errors(data: bytes, path: str) -> None:
    def match() -> None:
        matcher = PatternMatcher.compile(parse_ignore_file(data), what=".dockerignore")
        assert matcher.matches_or_parent_matches(path) in (True, False)

    assert "\n" not in outcome(match)


# --------------------------------------------------------------------------- references


@fuzz_settings(300)
@given(st.one_of(mutated(REFERENCE_SEEDS), st.binary(max_size=300)))
def test_reference_parsing_raises_only_build_errors(data: bytes) -> None:
    def parse_and_print() -> None:
        assert str(parse_reference(_text(data)))

    assert "\n" not in outcome(parse_and_print)


# --------------------------------------------------------------------------- tar reader


def _tar(entries: list[tuple[str, int, bytes, str]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data, link in entries:
            info = tarfile.TarInfo(name)
            info.type = bytes([kind])
            info.linkname = link
            info.size = len(data) if info.type == tarfile.REGTYPE else 0
            info.mode = 0o755 if info.type == tarfile.DIRTYPE else 0o644
            tar.addfile(info, io.BytesIO(data) if info.size else None)
    return buf.getvalue()


REG, DIR, SYM, LNK = tarfile.REGTYPE[0], tarfile.DIRTYPE[0], tarfile.SYMTYPE[0], tarfile.LNKTYPE[0]
LAYER_SEEDS = [
    _tar([("d", DIR, b"", ""), ("d/f", REG, b"hello", ""), ("l", SYM, b"", "d/f")]),
    _tar([("up", SYM, b"", "../../.."), ("up/x", REG, b"x", ""), ("h", LNK, b"", "d/f")]),
    _tar(
        [
            ("etc", DIR, b"", ""),
            ("etc/.wh.passwd", REG, b"", ""),
            ("etc/.wh..wh..opq", REG, b"", ""),
        ]
    ),
    _tar([("a" * 150 + "/b", REG, b"long name", ""), ("abs", SYM, b"", "/etc/passwd")]),
]


@fuzz_settings(200)
@given(st.one_of(mutated(LAYER_SEEDS), st.binary(max_size=2048)))
def test_tar_reader_raises_only_build_errors(data: bytes) -> None:
    reader = TarReader(io.BytesIO(data), limits=TarLimits(max_bytes=1 << 20, max_entries=1000))

    def read_all() -> None:
        while reader.next() is not None:
            while reader.read(4096):
                pass

    assert "\n" not in outcome(read_all)


# --------------------------------------------------------------------------- layer applier


def _tree(root: Path) -> dict[str, tuple[int, int, bytes]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            path = Path(dirpath, name)
            st_ = path.lstat()
            data = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
            out[str(path)] = (st_.st_mode, st_.st_mtime_ns, data)
    return out


@fuzz_settings(60)
@given(st.one_of(mutated(LAYER_SEEDS), st.binary(max_size=2048)))
def test_layer_applier_stays_in_its_root(data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="pybuild-fuzz-") as tmp:
        top = Path(tmp)
        root = top / "rootfs"
        root.mkdir()
        sentinel = top / "rootfs-evil"
        sentinel.mkdir()
        (sentinel / "secret").write_bytes(b"sentinel")
        os.chmod(sentinel / "secret", 0o600)
        before = _tree(sentinel)
        limits = TarLimits(max_bytes=1 << 20)
        assert "\n" not in outcome(lambda: apply_layer(io.BytesIO(data), root, limits=limits))
        assert sorted(p.name for p in top.iterdir()) == ["rootfs", "rootfs-evil"]
        assert _tree(sentinel) == before
