"""``pybuild [build] -t NAME[:TAG] [OPTIONS] CONTEXT``: build an image from a Dockerfile."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from builder import timings
from builder.api import BuildOptions, build, default_dockerfile
from builder.buildargs import resolve_build_args
from builder.commands._io import build_arg_words, memory_size
from builder.engine.outputs import (
    parse_compression,
    parse_output,
    resolve_outputs,
    store_names,
)
from builder.engine.progress import make_sink
from builder.errors import BuildError

if TYPE_CHECKING:
    from builder.engine.remotecache import CacheSpec
    from builder.engine.secrets import SecretSpec
    from builder.engine.ssh import SshSpec

_T = TypeVar("_T")

HELP = "Build an image from a Dockerfile (like `docker build`)."


def _key_value(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    if not key:
        raise argparse.ArgumentTypeError(f"invalid argument {text!r}: expected KEY=VALUE")
    return key, value


def _argument(parse: Callable[[str], _T]) -> Callable[[str], _T]:
    """An argparse ``type=`` from a parser that raises BuildError: its message, one line."""

    def convert(text: str) -> _T:
        try:
            return parse(text)
        except BuildError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None

    return convert


def _pids_limit(text: str) -> int:
    """``--pids-limit N``: N > 0, or 0 / -1 for no limit (docker's and podman's words)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid pids limit {text!r}: not a number") from None
    if value < -1:
        raise argparse.ArgumentTypeError(f"invalid pids limit {text!r}: use N > 0, 0 or -1")
    return max(value, 0)


@_argument
def _secret(text: str) -> SecretSpec:
    # lazy: only builds given --secret (csv); a plain build's start-up skips it
    from builder.engine.secrets import parse_secret_spec

    return parse_secret_spec(text)


@_argument
def _ssh(text: str) -> SshSpec:
    # lazy: only builds given --ssh (socket, subprocess, tempfile: ~5 ms of start-up)
    from builder.engine.ssh import parse_ssh_spec

    return parse_ssh_spec(text)


@_argument
def _cache_from(text: str) -> CacheSpec:
    # lazy: only builds given --cache-from/--cache-to load the cache code
    from builder.engine.remotecache import parse_cache_spec

    return parse_cache_spec(text, export=False)


@_argument
def _cache_to(text: str) -> CacheSpec:
    # lazy: only builds given --cache-from/--cache-to load the cache code
    from builder.engine.remotecache import parse_cache_spec

    return parse_cache_spec(text, export=True)


_compression = _argument(parse_compression)


def _epoch(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(
            f"invalid SOURCE_DATE_EPOCH {text!r}: expected whole seconds since 1970"
        )
    return int(text)


def _provenance(text: str) -> bool:
    if text.lower() in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(
        f"{text!r}: provenance attestations are not produced; only --provenance=false is accepted"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "context",
        metavar="CONTEXT",
        help="the build context: a directory, a git URL, a tarball or Dockerfile URL, or - (stdin)",
    )
    parser.add_argument(
        "-t", "--tag", action="append", default=[], metavar="NAME[:TAG]", help="name the image"
    )
    parser.add_argument(
        "-f",
        "--file",
        metavar="FILE",
        help="the Dockerfile (default: CONTEXT/Dockerfile; - = stdin)",
    )
    parser.add_argument(
        "--build-arg", action="append", default=[], metavar="KEY=VALUE", help="set a build arg"
    )
    parser.add_argument("--target", metavar="STAGE", help="build this stage")
    parser.add_argument(
        "--check",
        action="store_true",
        help="run the build checks and build nothing (like docker build --check)",
    )
    parser.add_argument("--no-cache", action="store_true", help="do not use the layer cache")
    parser.add_argument("--pull", action="store_true", help="always pull the base images")
    parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--network",
        default="default",
        choices=("default", "host", "none"),
        help="RUN networking: default (a private network with outbound access), none, or host"
        " (needs --allow network.host)",
    )
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="ENTITLEMENT",
        help="grant an entitlement: network.host, security.insecure",
    )
    parser.add_argument(
        "--secret",
        action="append",
        default=[],
        type=_secret,
        metavar="id=ID[,src=FILE|,env=VAR]",
        help="expose a secret to RUN --mount=type=secret (id=ID alone: the variable or file ID)",
    )
    parser.add_argument(
        "--ssh",
        action="append",
        default=[],
        type=_ssh,
        metavar="default|ID[=SOCKET|KEY[,KEY...]]",
        help="forward an SSH agent (default: $SSH_AUTH_SOCK) or keys to RUN --mount=type=ssh",
    )
    parser.add_argument(
        "--build-context",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a named context for FROM/--from: a directory, docker-image://REF,"
        " oci-layout://PATH[:TAG], or a git or https URL",
    )
    parser.add_argument(
        "--source-date-epoch",
        type=_epoch,
        metavar="SECONDS",
        help="clamp file times and set history and image times to this Unix time for"
        " reproducible images (default: $SOURCE_DATE_EPOCH)",
    )
    parser.add_argument(
        "--cache-from",
        action="append",
        default=[],
        type=_cache_from,
        metavar="type=registry,ref=REF|type=local,src=DIR",
        help="import build cache from a registry or an OCI layout directory (repeatable)",
    )
    parser.add_argument(
        "--cache-to",
        action="append",
        default=[],
        type=_cache_to,
        metavar="type=registry,ref=REF|type=local,dest=DIR[,mode=min|max][,compression=...]"
        "[,mounts=true]",
        help="export the build cache to a registry or an OCI layout directory",
    )
    parser.add_argument(
        "--squash",
        action="store_true",
        help="fold the layers the Dockerfile adds to its base image into one layer",
    )
    parser.add_argument(
        "-o",
        "--output",
        action="append",
        default=[],
        metavar="type=TYPE[,dest=PATH]",
        help="where the result goes: type=image (the store, default), registry, oci, docker,"
        " tar, local, cacheonly; DIR alone is type=local, - is a tar on stdout",
    )
    parser.add_argument(
        "--push", action="store_true", help="push the image after the build (type=registry)"
    )
    parser.add_argument(
        "--metadata-file", metavar="FILE", help="write the build's result as JSON (like buildx)"
    )
    parser.add_argument(
        "--compression",
        type=_compression,
        metavar="gzip|zstd[,level=N]",
        help="compress the image's layers so (re-compressing others) in every image output",
    )
    parser.add_argument(
        "--provenance",
        type=_provenance,
        metavar="false",
        help="provenance attestations: none are made, only false is accepted",
    )
    parser.add_argument(
        "--progress", default="auto", choices=("auto", "tty", "plain", "quiet"), help="output"
    )
    parser.add_argument("--iidfile", metavar="FILE", help="write the image ID to FILE")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the image ID")
    parser.add_argument("--platform", metavar="OS/ARCH", help="target platform (default: host)")
    parser.add_argument(
        "--memory", type=memory_size, metavar="BYTES", help="memory limit for RUN (e.g. 512m)"
    )
    parser.add_argument("--cpus", type=float, metavar="N", help="CPU limit for RUN")
    parser.add_argument(
        "--pids-limit",
        type=_pids_limit,
        default=4096,
        metavar="N",
        help="processes (and threads) per RUN step, 0 or -1 for no limit (default 4096)",
    )
    parser.add_argument("--runtime", default="runc", choices=("runc", "crun"))
    parser.add_argument("--root", metavar="DIR", help="image store (default: $PYBUILD_ROOT)")
    parser.add_argument(
        "--debug-timings",
        action="store_true",
        help="print each phase's wall and CPU time to stderr (also: PYBUILD_DEBUG_TIMINGS=1)",
    )


def run(args: argparse.Namespace) -> int:
    if args.check:
        return _check(args)
    build_args = build_arg_words(args.build_arg)
    outputs = resolve_outputs(
        [parse_output(text) for text in args.output],
        tags=args.tag,
        push=args.push,
        compression=args.compression,
    )
    options = BuildOptions(
        context=args.context,
        dockerfile=args.file,
        tags=store_names(outputs, args.tag),
        build_args=build_args,
        target=args.target,
        no_cache=args.no_cache,
        pull=args.pull,
        labels=tuple(_key_value(x) for x in args.label),
        network=args.network,
        allow=tuple(args.allow),
        platform=args.platform,
        memory=args.memory,
        cpus=args.cpus,
        pids_limit=args.pids_limit,
        runtime=args.runtime,
        root=args.root,
        secrets=tuple(args.secret),
        ssh=tuple(args.ssh),
        build_contexts=tuple(args.build_context),
        source_date_epoch=args.source_date_epoch,
        squash=args.squash,
        cache_from=tuple(args.cache_from),
        cache_to=tuple(args.cache_to),
        outputs=outputs,
    )
    quiet = args.quiet or args.progress == "quiet"
    sink = make_sink(args.progress, sys.stderr, quiet=quiet)
    ok = False
    collector = None
    if args.debug_timings or timings.enabled_by_environment():
        collector = timings.Collector()
        collector.add(timings.process_start_up(collector))
    try:
        with contextlib.ExitStack() as stack:
            if collector is not None:
                stack.enter_context(timings.collecting(collector))
            result = build(options, sink=sink)
        ok = True
    finally:
        sink.close(ok=ok)
        if collector is not None:
            sys.stderr.write(collector.render())
    if args.iidfile:
        with open(args.iidfile, "w", encoding="utf-8") as fh:
            fh.write(str(result.image_id))
    if args.metadata_file:
        # lazy: only --metadata-file reads the store here
        from builder.commands._metadata import write_metadata

        write_metadata(Path(args.metadata_file), result, root=args.root)
    if quiet and not any(out.to_stdout for out in outputs):
        print(result.image_id)
    return 0


def _check(args: argparse.Namespace) -> int:
    """``--check``: ``pybuild check`` with this build's Dockerfile, arguments and context."""
    # lazy: only --check loads the lint modules
    from builder.commands.check import Request, evaluate, report

    dockerfile = args.file
    if dockerfile is None:
        dockerfile = str(default_dockerfile(Path(args.context)))
    request = Request(
        dockerfile=dockerfile,
        context=args.context,
        build_args=resolve_build_args(build_arg_words(args.build_arg)),
        target=args.target,
        platform=args.platform,
        root=args.root,
    )
    return report(request, evaluate(request))
