"""``pybuild inspect`` (docker image inspect's JSON) and ``pybuild history``'s table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cmdkit import built, imported, pybuild

from builder.oci.types import ContainerConfig
from builder.store import Store


def test_inspect_shows_dockers_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = ContainerConfig(cmd=("sh",), env=("PATH=/bin",))
    rec = imported(tmp_path, {"bin/sh": b"#!" * 100}, "busybox:latest", config=config)
    r = pybuild(capsys, tmp_path, "inspect", "busybox")
    assert r.rc == 0
    assert r.out.startswith('[\n    {\n        "Id": ')  # four-space indent, like the CLI
    (data,) = json.loads(r.out)
    assert list(data) == [
        "Id",
        "RepoTags",
        "RepoDigests",
        "Parent",
        "Comment",
        "Created",
        "Author",
        "Config",
        "Architecture",
        "Os",
        "Size",
        "RootFS",
        "Metadata",
        "Descriptor",
    ]
    image = Store.open(tmp_path).load_image(rec.descriptor)
    assert data["Id"] == str(rec.config_digest)
    assert data["RepoTags"] == ["busybox:latest"]
    assert data["RepoDigests"] == [f"busybox@{rec.digest}"]
    assert data["Parent"] == ""
    assert data["Comment"] == "Imported from -"
    assert data["Created"] == "2023-11-14T22:13:20Z"
    assert data["Config"] == {"Cmd": ["sh"], "Env": ["PATH=/bin"]}
    assert (data["Architecture"], data["Os"]) == ("amd64", "linux")
    assert data["Size"] == 200
    assert data["RootFS"] == {"Type": "layers", "Layers": [str(image.config.diff_ids[0])]}
    assert data["Descriptor"]["digest"] == str(rec.digest)
    # the same image by ID, short ID, manifest digest and name@digest
    for ref in (str(rec.config_digest), rec.config_digest.short, str(rec.digest)):
        again = pybuild(capsys, tmp_path, "inspect", ref)
        assert json.loads(again.out)[0]["Id"] == str(rec.config_digest), ref
    pinned = pybuild(capsys, tmp_path, "inspect", f"busybox@{rec.digest}")
    assert json.loads(pinned.out)[0]["Id"] == str(rec.config_digest)


def test_inspect_unknown_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imported(tmp_path, {"a": b"1"}, "app:1")
    r = pybuild(capsys, tmp_path, "inspect", "nope")
    assert (r.rc, r.out, r.err) == (1, "[]\n", "Error: No such image: nope\n")
    mixed = pybuild(capsys, tmp_path, "inspect", "app:1", "nope:2")
    assert mixed.rc == 1
    assert [d["RepoTags"] for d in json.loads(mixed.out)] == [["app:1"]]
    assert mixed.err == "Error: No such image: nope:2\n"
    bad = pybuild(capsys, tmp_path, "inspect", "UPPER")
    assert bad.rc == 1
    assert bad.err == (
        "Error: invalid reference format: repository name (library/UPPER) must be lowercase\n"
    )


def test_inspect_names_the_image_when_a_blob_is_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = imported(tmp_path, {"a": b"1"}, "app:1")
    store = Store.open(tmp_path)
    layer = store.read_manifest(rec.descriptor).layers[0]
    store.cas.blob_path(layer.digest).unlink()
    r = pybuild(capsys, tmp_path, "inspect", "app:1")
    assert r.rc == 1
    assert r.err == f"Error: image app:1: blob {layer.digest} is missing from the store\n"


STEPS: list[tuple[str, dict[str, bytes] | None]] = [
    ("/bin/sh -c #(nop) ADD file:0123456789abcdef0123456789abcdef in / ", {"bin/sh": b"x" * 2000}),
    ('/bin/sh -c #(nop)  CMD ["sh"]', None),
    ("RUN /bin/sh -c echo\thello > /greeting # buildkit", {"greeting": b"hello\n"}),
]


def test_history_rows_newest_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = built(tmp_path, STEPS, "app:1")
    r = pybuild(capsys, tmp_path, "history", "app:1")
    assert r.rc == 0
    lines = r.out.splitlines()
    assert re.fullmatch(r"IMAGE          CREATED +CREATED BY +SIZE      COMMENT", lines[0])
    rows = [re.split(r"\s{3,}", line.rstrip()) for line in lines[1:]]
    assert [row[0] for row in rows] == [img.id.short, "<missing>", "<missing>"]
    assert [row[2] for row in rows] == [
        "RUN /bin/sh -c echo hello > /greeting # buil…",  # tab -> space, 45 columns
        '/bin/sh -c #(nop)  CMD ["sh"]',
        "/bin/sh -c #(nop) ADD file:0123456789abcdef0…",
    ]
    assert [row[3] for row in rows] == ["6B", "0B", "2kB"]
    assert all(re.fullmatch(r"\d+ \w+ ago", row[1]) for row in rows)
    # the header's columns are where the cells start
    assert lines[1].index("RUN") == lines[0].index("CREATED BY")
    assert lines[1].endswith("   ")  # empty COMMENT: the padding stays, as in Docker's output


def test_history_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = built(tmp_path, STEPS, "app:1")
    raw = pybuild(capsys, tmp_path, "history", "app:1", "-H=false", "--no-trunc")
    lines = raw.out.splitlines()
    assert re.fullmatch(r"IMAGE +CREATED AT +CREATED BY +SIZE +COMMENT", lines[0])
    top = re.split(r"\s{3,}", lines[1].rstrip())
    assert top[0] == str(img.id)
    assert re.fullmatch(r"2023-11-1\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", top[1])
    assert top[2] == "RUN /bin/sh -c echo hello > /greeting # buildkit"
    assert top[3] == "6"
    bottom = re.split(r"\s{3,}", lines[3].rstrip())
    assert bottom[3] == "2000"
    quiet = pybuild(capsys, tmp_path, "history", "-q", "app:1")
    assert quiet.out.split() == [img.id.short, "<missing>", "<missing>"]
    missing = pybuild(capsys, tmp_path, "history", "nope")
    assert (missing.rc, missing.err) == (1, "ERROR: No such image: nope\n")


def test_history_rejects_more_layers_in_history_than_in_rootfs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dataclasses import replace

    from builder.oci import mutate
    from builder.oci.types import History

    img = built(tmp_path, STEPS[:1], "app:1")
    lying = mutate.with_image_config(
        img, replace(img.config, history=(*img.config.history, History(created_by="extra")))
    )
    Store.open(tmp_path).write_image(lying, ("app:1",))
    r = pybuild(capsys, tmp_path, "history", "app:1")
    assert r.rc == 1
    assert r.err == "ERROR: image app:1: too many non-empty layers in History section\n"


def test_history_human_flag_is_a_go_boolean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built(tmp_path, STEPS[:1], "app:1")
    bare = pybuild(capsys, tmp_path, "history", "-H", "app:1")  # -H takes no separate value
    assert bare.rc == 0
    assert bare.out.startswith("IMAGE          CREATED   ")
    spelled = pybuild(capsys, tmp_path, "history", "--human=0", "app:1")
    assert spelled.out.split()[:4] == ["IMAGE", "CREATED", "AT", "CREATED"]
    bad = pybuild(capsys, tmp_path, "history", "-H=maybe", "app:1")
    assert (bad.rc, bad.err) == (
        1,
        'ERROR: invalid argument "maybe" for "-H, --human" flag: not a boolean\n',
    )
    none = pybuild(capsys, tmp_path, "history")
    assert none.err == 'ERROR: "pybuild history" requires exactly 1 argument\n'


@pytest.mark.parametrize(
    "command",
    ["images", "inspect", "history", "tag", "rmi", "save", "load", "import", "prune", "fsck"],
)
def test_every_command_has_help_and_a_root_flag(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from builder.cli import main

    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: pybuild {command} ")
    assert "--root DIR" in out
