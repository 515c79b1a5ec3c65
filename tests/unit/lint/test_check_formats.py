"""``pybuild check``: formats, exit status, options, context and store inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from builder.cli import main

SCHEMA = Path(__file__).resolve().parents[2] / "data" / "sarif" / "sarif-schema-2.1.0.json"
MESSY = "FROM alpine AS Build\nENV key value\nCOPY secret.txt /x\nCMD echo hi\n"


def write(tmp_path: Path, text: str, ignore: str | None = None) -> Path:
    path = tmp_path / "Dockerfile"
    path.write_text(text, encoding="utf-8")
    if ignore is not None:
        (tmp_path / ".dockerignore").write_text(ignore, encoding="utf-8")
    return path


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``pybuild check`` against an empty store, so no base image is known."""
    code = main(["check", "--root", "/nonexistent/pybuild-store", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_warnings_only_exit_zero_with_rule_url_and_caret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "FROM scratch\nCMD run\n")
    code, out, err = check(capsys, "-f", str(path))
    assert code == 0
    assert out == "OK: 2 instructions, 1 stage\n"
    assert err == (
        "warning: JSON arguments recommended for CMD to prevent unintended behavior related to "
        "OS signals\n"
        f" --> {path}:2:1\n"
        "  |\n"
        "2 | CMD run\n"
        "  | ^^^^^^^\n"
        "  = note: JSONArgsRecommended "
        "(https://docs.docker.com/go/dockerfile/rule/json-args-recommended/)\n"
    )


def test_error_true_fails_with_buildkits_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "# check=error=true\nFROM scratch\nCMD run\n")
    code, out, err = check(capsys, "-f", str(path))
    assert code == 1
    assert out == ""
    assert "\nerror: lint violation found for rules: JSONArgsRecommended\n" in err
    assert err.endswith("\ncheck failed: 1 warning\n")


def test_build_arg_replaces_the_directive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "# check=error=true\nFROM scratch\nCMD run\n")
    code, _, err = check(
        capsys, "-f", str(path), "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=all"
    )
    assert (code, err) == (0, "")


def test_bad_check_option_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "# check=skip\nFROM scratch\n")
    code, _, err = check(capsys, "-f", str(path))
    assert code == 1
    assert 'error: failed to parse check options: invalid check option "skip"' in err


def test_context_dockerignore_feeds_copy_ignored_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "FROM scratch\nCOPY secret.txt /x\n", ignore="secret.txt\n")
    code, out, _ = check(capsys, "-f", str(path), "--format", "json")
    assert code == 0
    rules = [p["rule"] for p in json.loads(out)["problems"]]
    assert rules == ["CopyIgnoredFile"]
    other = tmp_path / "elsewhere"
    other.mkdir()
    _, out, _ = check(capsys, "-f", str(path), "--format", "json", str(other))
    assert json.loads(out)["problems"] == []


def test_json_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "FROM scratch AS Base\nWORKDIR\n")
    code, out, err = check(capsys, "-f", str(path), "--format", "json")
    assert (code, err) == (1, "")
    assert json.loads(out) == {
        "version": 1,
        "file": str(path),
        "ok": False,
        "failure": None,
        "problems": [
            {
                "level": "warning",
                "rule": "StageNameCasing",
                "message": "Stage name 'Base' should be lowercase",
                "description": "Stage names should be lowercase",
                "url": "https://docs.docker.com/go/dockerfile/rule/stage-name-casing/",
                "location": {
                    "file": str(path),
                    "line": 1,
                    "column": 17,
                    "end_line": 1,
                    "end_column": 20,
                },
            },
            {
                "level": "error",
                "rule": None,
                "message": "WORKDIR requires exactly one argument",
                "description": None,
                "url": None,
                "location": {
                    "file": str(path),
                    "line": 2,
                    "column": 1,
                    "end_line": 2,
                    "end_column": 7,
                },
            },
        ],
    }


def sarif(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, dict[str, Any]]:
    code, out, err = check(capsys, "-f", str(path), "--format", "sarif")
    assert err == ""
    document = json.loads(out)
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(document, schema, cls=jsonschema.Draft4Validator)
    return code, document


def test_sarif_is_valid_and_complete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, MESSY, ignore="secret.txt\n")
    code, document = sarif(capsys, path)
    assert code == 0
    (run,) = document["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "pybuild"
    assert len(driver["rules"]) == 22
    results = run["results"]
    assert [r["ruleId"] for r in results] == [
        "StageNameCasing",
        "LegacyKeyValueFormat",
        "SecretsUsedInArgOrEnv",
        "CopyIgnoredFile",
        "JSONArgsRecommended",
    ]
    first = results[0]
    assert driver["rules"][first["ruleIndex"]]["id"] == "StageNameCasing"
    assert first["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 1,
        "startColumn": 16,
        "endLine": 1,
        "endColumn": 21,
    }


def test_sarif_with_errors_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "FROM scratch\nCOPY --chwn=1 a b\nRUN \\\n")
    code, document = sarif(capsys, path)
    assert code == 1
    levels = [r["level"] for r in document["runs"][0]["results"]]
    assert levels == ["error"]


def test_invalid_sarif_is_rejected() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": "2.1.0", "runs": [{}]}, schema)
