"""``--secret`` specs parsed and resolved as buildx and BuildKit's secrets provider do."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.engine.secrets import SecretSpec, parse_secret_spec, secret_store
from builder.errors import BuildError


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("id=tok", SecretSpec(id="tok")),
        ("id=tok,src=a.txt", SecretSpec(id="tok", file="a.txt")),
        ("ID=tok,Source=a.txt", SecretSpec(id="tok", file="a.txt")),
        ("id=tok,env=TOKEN", SecretSpec(id="tok", env="TOKEN")),
        ("type=env,id=tok,src=TOKEN", SecretSpec(id="tok", env="TOKEN")),
        ("type=file,id=tok,src=a.txt", SecretSpec(id="tok", file="a.txt")),
        ('id=tok,"src=a,b.txt"', SecretSpec(id="tok", file="a,b.txt")),
    ],
)
def test_parse(text: str, spec: SecretSpec) -> None:
    assert parse_secret_spec(text) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id=tok,foo=bar", "unexpected key 'foo' in 'foo=bar'"),
        ("id=tok,type=ssh", 'unsupported secret type "ssh"'),
        ("tok", "invalid field 'tok' must be a key=value pair"),
        ("src=a.txt", "secret ID missing in 'src=a.txt'"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(BuildError) as info:
        parse_secret_spec(text)
    assert info.value.message == message


def test_id_alone_reads_the_variable_else_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYBUILD_TEST_TOK", "from-env")
    assert secret_store([SecretSpec(id="PYBUILD_TEST_TOK")]).get("PYBUILD_TEST_TOK") == b"from-env"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tokfile").write_bytes(b"from-file")
    store = secret_store([SecretSpec(id="tokfile")])
    assert store.get("tokfile") == b"from-file"
    assert store.get("other") is None


def test_missing_file_and_size_limit(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"^failed to stat .*/nope: No such file or directory$"):
        secret_store([SecretSpec(id="t", file=str(tmp_path / "nope"))])
    big = tmp_path / "big"
    big.write_bytes(b"x" * (500 * 1024 + 1))
    with pytest.raises(BuildError, match=r"^secret t too big\. max size 500KB$"):
        secret_store([SecretSpec(id="t", file=str(big))])


def test_unset_variable_is_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYBUILD_TEST_UNSET", raising=False)
    assert secret_store([SecretSpec(id="t", env="PYBUILD_TEST_UNSET")]).get("t") is None
