"""``pybuild inspect NAME...``: a JSON array shaped like ``docker inspect``'s: a container's
(:func:`builder.commands._containers.inspect_json`) when NAME is one, else an image's.

``Id`` is the config digest (the image ID), ``RootFS.Layers`` the diff_ids (digests of the
uncompressed layers), ``RepoDigests`` name the manifest digest, ``Descriptor`` is the manifest's
descriptor, ``Size`` the layers' uncompressed content. Unknown names are reported on stderr as
``Error: No such image: NAME`` (exit 1) after the images that were found are printed.
"""

from __future__ import annotations

import argparse
import json
import sys

from builder.commands._containers import inspect_json
from builder.commands._format import go_json_escape
from builder.commands._io import add_root_argument
from builder.commands._store import about, image_size, open_store
from builder.containers.state import ContainerStore
from builder.errors import BuildError, InvalidReferenceError
from builder.oci.image import Image
from builder.reference import parse_normalized
from builder.store import Store

HELP = "Show the details of images as JSON (like `docker image inspect`)."

_NEVER_TAGGED = "0001-01-01T00:00:00Z"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "images", nargs="+", metavar="NAME", help="container, or image name, ID or digest"
    )
    add_root_argument(parser)


def _extra_str(extra: tuple[tuple[str, str], ...], key: str) -> str:
    for k, v in extra:
        if k == key:
            value = json.loads(v)
            return value if isinstance(value, str) else ""
    return ""


def describe(store: Store, image: Image, names: tuple[str, ...], manifest_digest: str) -> object:
    config = image.config
    refs = []
    for name in names:
        try:
            refs.append(parse_normalized(name))
        except InvalidReferenceError:
            continue  # a hand-edited index.json name: not a reference Docker could show
    out: dict[str, object] = {
        "Id": str(image.manifest.config.digest),
        "RepoTags": [r.familiar for r in refs],
        "RepoDigests": sorted({f"{r.familiar_name}@{manifest_digest}" for r in refs}),
        "Parent": "",
        "Comment": _extra_str(config.extra, "comment"),
        "Created": config.created or "",
        "Author": config.author,
        "Config": config.config.to_json(),
        "Architecture": config.architecture,
    }
    if config.variant:
        out["Variant"] = config.variant
    out["Os"] = config.os
    if config.os_version:
        out["OsVersion"] = config.os_version
    out["Size"] = image_size(store, image)
    out["RootFS"] = {"Type": "layers", "Layers": [str(d) for d in config.diff_ids]}
    out["Metadata"] = {"LastTagTime": _NEVER_TAGGED}
    out["Descriptor"] = {
        "mediaType": image.manifest.media_type,
        "digest": manifest_digest,
        "size": len(image.raw_manifest),
    }
    return out


def run(args: argparse.Namespace) -> int:
    store = open_store(args)
    found: list[object] = []
    errors: list[str] = []
    containers = ContainerStore(store.root)
    for name in args.images:
        try:
            # docker inspect: a container by that name or ID first, then an image
            found.append(inspect_json(containers.find(name)))
            continue
        except BuildError:
            pass
        try:
            entry, _ = store.lookup(name)
            with about(name):
                image = store.load_image(entry.descriptor)
                found.append(describe(store, image, entry.names, str(entry.digest)))
        except BuildError as exc:
            errors.append(exc.message)
    text = json.dumps(found, indent=4, ensure_ascii=False) if found else "[]"
    print(go_json_escape(text))
    for message in errors:
        print(f"Error: {message}", file=sys.stderr)
    return 1 if errors else 0
