"""``pybuild images``: list the images of the store, as ``docker images`` does.

One row per repository:tag (an image with several tags has several rows, dangling images
show ``<none>``), newest first. IMAGE ID is the config digest, SIZE the sum of the layers'
uncompressed content, DIGEST (``--digests``) the manifest digest a registry would serve.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, replace

from builder.commands._format import (
    created_at,
    created_since,
    go_json_escape,
    parse_created,
    short_id,
    table,
)
from builder.commands._io import add_root_argument
from builder.commands._store import about, image_size, open_store
from builder.errors import BuildError, InvalidReferenceError
from builder.reference import parse_normalized
from builder.units import human_size

HELP = "List images in the store (like `docker images`)."

_NONE = "<none>"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]", help="only these")
    parser.add_argument("--digests", action="store_true", help="show manifest digests")
    parser.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    parser.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    parser.add_argument(
        "--format", choices=("table", "json"), default="table", help="output format"
    )
    add_root_argument(parser)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Row:
    repository: str
    tag: str
    digest: str
    image_id: str
    created: str | None
    size: int
    order: float


def _go_glob(pattern: str) -> re.Pattern[str]:
    """Go's ``path.Match``: ``*`` and ``?`` never match ``/``; ``[...]`` classes; ``\\`` escapes."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("^"):
                    body = "^" + body[1:].replace("\\", "\\\\")
                else:
                    body = body.replace("\\", "\\\\")
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out))


def _matches(pattern: re.Pattern[str], name: str) -> bool:
    """Docker's ``FamiliarMatch``: the familiar ``name:tag``, else the familiar name."""
    try:
        ref = parse_normalized(name)
    except InvalidReferenceError:
        return bool(pattern.fullmatch(name))
    return bool(pattern.fullmatch(ref.familiar) or pattern.fullmatch(ref.familiar_name))


def run(args: argparse.Namespace) -> int:
    store = open_store(args)
    pattern = _go_glob(args.reference) if args.reference else None
    rows: list[_Row] = []
    failed = False
    for entry in store.entries():
        names = entry.names
        if pattern is not None:
            names = tuple(n for n in names if _matches(pattern, n))
            if not names:
                continue  # a filter hides dangling images, as Docker's does
        label = entry.names[0] if entry.names else str(entry.digest)
        try:
            with about(label):
                image = store.load_image(entry.descriptor)
                size = image_size(store, image)
        except BuildError as exc:
            print(f"ERROR: {exc.message}", file=sys.stderr)
            failed = True
            continue
        created = image.config.created
        when = parse_created(created)
        base = _Row(
            repository=_NONE,
            tag=_NONE,
            digest=_NONE,
            image_id=str(image.manifest.config.digest),
            created=created,
            size=size,
            order=when.timestamp() if when else float("-inf"),
        )
        if not names:
            rows.append(base)
            continue
        by_repo: dict[str, list[str]] = {}
        for name in names:
            try:
                ref = parse_normalized(name)
            except InvalidReferenceError:  # a hand-edited index.json: show the name as it is
                by_repo.setdefault(name, []).append(_NONE)
                continue
            by_repo.setdefault(ref.familiar_name, []).append(ref.tag or _NONE)
        digest = str(entry.digest) if args.digests else _NONE
        for repo in sorted(by_repo):
            for tag in sorted(by_repo[repo]):
                rows.append(replace(base, repository=repo, tag=tag, digest=digest))
    rows.sort(key=lambda r: r.order, reverse=True)
    _print(rows, args)
    return 1 if failed else 0


def _print(rows: list[_Row], args: argparse.Namespace) -> None:
    def ident(row: _Row) -> str:
        return row.image_id if args.no_trunc else short_id(row.image_id)

    if args.quiet:
        for row in rows:
            print(ident(row))
        return
    if args.format == "json":
        for row in rows:
            record = {
                "Containers": "N/A",
                "CreatedAt": created_at(row.created),
                "CreatedSince": created_since(row.created),
                "Digest": row.digest,
                "ID": ident(row),
                "Repository": row.repository,
                "SharedSize": "N/A",
                "Size": human_size(row.size),
                "Tag": row.tag,
                "UniqueSize": "N/A",
                "VirtualSize": human_size(row.size, 4),
            }
            print(go_json_escape(json.dumps(record, separators=(",", ":"), ensure_ascii=False)))
        return
    header = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    if args.digests:
        header.insert(2, "DIGEST")
    lines = [header]
    for row in rows:
        cells = [row.repository, row.tag, ident(row), created_since(row.created)]
        cells.append(human_size(row.size))
        if args.digests:
            cells.insert(2, row.digest)
        lines.append(cells)
    sys.stdout.write(table(lines))
