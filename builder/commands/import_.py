"""``pybuild import FILE|URL|- [REPOSITORY[:TAG]]``: a rootfs tarball becomes a one-layer image.

As ``docker import``: ``--change`` applies Dockerfile instructions to the run config (CMD,
ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR),
``--message`` sets the comment (default ``Imported from -``, or the URL), ``--platform`` the
platform (default: this machine's). The tarball may be gzip or zstd compressed. Prints the
image ID.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import replace
from typing import BinaryIO, Final, assert_never

from builder.commands._io import add_root_argument
from builder.commands._store import open_store
from builder.errors import BuildError, InvalidInstructionError
from builder.fs import paths
from builder.oci.config import ContainerConfig, Healthcheck
from builder.oci.descriptor import Platform
from builder.reference import parse
from builder.store.archive import import_rootfs
from builder.syntax import ir
from builder.syntax.parser import parse as parse_dockerfile
from builder.syntax.substitute import substitute
from builder.syntax.transform import to_ir

HELP = "Import the contents of a tarball to create a filesystem image (like `docker import`)."

_URL_TIMEOUT: Final = 60.0
_DEFAULT_SHELL: Final = ("/bin/sh", "-c")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="file|URL|-", help="rootfs tarball, URL, or - (stdin)")
    parser.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]", help="image name")
    parser.add_argument(
        "-c",
        "--change",
        action="append",
        default=[],
        metavar="INSTRUCTION",
        help="apply a Dockerfile instruction to the image (repeatable)",
    )
    parser.add_argument("-m", "--message", help="commit message for the imported image")
    parser.add_argument("--platform", help="os/arch[/variant] of the image (default: this host)")
    add_root_argument(parser)


# -- --change ---------------------------------------------------------------------------------


def _argv(command: tuple[str, ...], prepend_shell: bool, shell: tuple[str, ...]) -> tuple[str, ...]:
    return (*(shell or _DEFAULT_SHELL), *command) if prepend_shell else command


def _ports(words: tuple[str, ...]) -> tuple[str, ...]:
    """``nat.ParsePortSpecs`` for EXPOSE: ``80`` -> ``80/tcp``; ranges expand."""
    out: list[str] = []
    for word in words:
        port, _, proto = word.partition("/")
        proto = (proto or "tcp").lower()
        start, _, end = port.partition("-")
        try:
            low = int(start)
            high = int(end) if end else low
        except ValueError:
            raise InvalidInstructionError(f"invalid containerPort: {port}") from None
        if not 0 <= low <= high <= 65535:
            raise InvalidInstructionError(f"invalid containerPort: {port}")
        if proto not in ("tcp", "udp", "sctp"):
            raise InvalidInstructionError(f"invalid proto: {proto}")
        out.extend(f"{p}/{proto}" for p in range(low, high + 1))
    return tuple(out)


def _apply(config: ContainerConfig, node: ir.Instruction, cmd_set: bool) -> ContainerConfig:
    match node:
        case ir.Cmd():
            return replace(config, cmd=_argv(node.command, node.prepend_shell, config.shell))
        case ir.Entrypoint():
            entrypoint = _argv(node.command, node.prepend_shell, config.shell)
            # an ENTRYPOINT drops the CMD unless a CMD was set by these changes
            return replace(config, entrypoint=entrypoint, cmd=config.cmd if cmd_set else ())
        case ir.Env():
            for pair in node.pairs:
                config = config.with_env(pair.key, pair.value)
            return config
        case ir.Expose():
            ports = sorted({*config.exposed_ports, *_ports(node.ports)})
            return replace(config, exposed_ports=tuple(ports))
        case ir.Label():
            labels = dict(config.labels)
            labels.update((p.key, p.value) for p in node.pairs)
            return replace(config, labels=tuple(sorted(labels.items())))
        case ir.OnBuild():
            return replace(config, on_build=(*config.on_build, node.expression))
        case ir.User():
            return replace(config, user=node.user)
        case ir.Volume():
            return replace(config, volumes=tuple(sorted({*config.volumes, *node.paths})))
        case ir.Workdir():
            path = node.path
            if not path.startswith("/"):
                path = paths.join("/", config.working_dir, path)
            return replace(config, working_dir=paths.clean(path))
        case ir.StopSignal():
            return replace(config, stop_signal=node.signal)
        case ir.Healthcheck():
            check = Healthcheck(
                test=node.test,
                interval=node.interval or None,
                timeout=node.timeout or None,
                start_period=node.start_period or None,
                start_interval=node.start_interval or None,
                retries=node.retries or None,
            )
            return replace(config, healthcheck=check)
        case ir.From() | ir.Run() | ir.Copy() | ir.Add() | ir.Arg() | ir.Shell() | ir.Maintainer():
            raise InvalidInstructionError(f"{node.keyword.lower()} is not a valid change command")
        case _:
            assert_never(node)


def apply_changes(changes: Sequence[str], config: ContainerConfig | None = None) -> ContainerConfig:
    """Apply ``--change`` instructions in order; variables expand against the ENV so far."""
    current = config or ContainerConfig()
    cmd_set = False
    for change in changes:
        try:
            dockerfile = to_ir(parse_dockerfile(f"FROM scratch\n{change}\n", path="--change"))
            if len(dockerfile.stages) > 1:
                raise InvalidInstructionError("from is not a valid change command")
            nodes = dockerfile.stages[0].instructions
            for node in nodes:
                env = dict(item.partition("=")[::2] for item in current.env)
                current = _apply(current, substitute(node, env), cmd_set)
                cmd_set = cmd_set or isinstance(node, ir.Cmd)
        except BuildError as exc:
            raise InvalidInstructionError(f"invalid --change {change!r}: {exc.message}") from None
    return current


# -- the source -------------------------------------------------------------------------------


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def _open_url(url: str) -> BinaryIO:
    try:
        response: BinaryIO = urllib.request.urlopen(url, timeout=_URL_TIMEOUT)
    except urllib.error.HTTPError as exc:
        raise BuildError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise BuildError(f"{url}: cannot fetch: {reason}") from None
    return response


def run(args: argparse.Namespace) -> int:
    tags: tuple[str, ...] = ()
    if args.reference:
        ref = parse(args.reference)
        if ref.digest:
            raise InvalidInstructionError("refusing to create a tag with a digest reference")
        tags = (str(ref),)
    config = apply_changes(args.change) if args.change else None
    platform = Platform.parse(args.platform) if args.platform else None
    source: str = args.source
    # Docker's default comment: the CLI uploads files as "-", so only a URL is named.
    message = args.message or f"Imported from {source if _is_url(source) else '-'}"
    store = open_store(args)
    stream: BinaryIO
    if source == "-":
        if sys.stdin.isatty():
            raise BuildError("import from stdin, but stdin is a terminal")
        stream = sys.stdin.buffer
        name = "<stdin>"
    elif _is_url(source):
        stream = _open_url(source)
        name = source
    else:
        try:
            stream = open(source, "rb")  # noqa: SIM115 (closed in the finally below)
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise BuildError(f"open {source}: {reason}") from None
        name = source
    try:
        record = import_rootfs(
            store,
            stream,
            tags=tags,
            platform=platform,
            source=name,
            config=config,
            comment=message,
        )
    except OSError as exc:
        raise BuildError(f"{name}: read failed: {exc.strerror or exc}") from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    print(record.config_digest)
    return 0
