"""``pybuild run [OPTIONS] IMAGE [COMMAND [ARG...]]``: run a command in a new container.

The container's root is an overlay of the image's layer directories with a throwaway upper
directory (``docker run --rm`` semantics: nothing the container writes is kept), on the private
network RUN steps get (``--network``). ``-d``, ``-p``, ``-v``, ``--mount`` and ``--restart`` make
a container supervised by conmon instead (:mod:`builder.containers`); ``-t`` runs on a pty.
The snapshotter and the runtime (``--runtime``) are the build's (``api.open_machinery``).

Signals (``docker run``'s signal proxy, without a terminal): SIGTERM, SIGINT and SIGHUP are
forwarded to the container's process, and ``pybuild run`` exits quietly with the container's
exit status (128+N when signal N ended it). A container that has not exited ``--stop-timeout``
seconds after a forwarded signal is killed (SIGKILL, so 137), as ``docker stop`` does: a
container's PID 1 ignores the signals it has no handler for, so ``sleep`` would otherwise never
stop. A signal that comes before the container starts stops the set-up and exits 128+N, quietly
too. Containers, mounts and temporary directories are cleaned up either way.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from builder.api import open_machinery
from builder.commands._containers import add_container_flags, run_container, wants_container
from builder.commands._store import open_store
from builder.engine.run import run_on_layers
from builder.errors import BuildError, Interrupted, RunStepError, Span
from builder.oci.types import History
from builder.plan import RunStep
from builder.store.paths import TMP

if TYPE_CHECKING:
    from builder.runtime.oci import ExitStatus, OutputCallback, Runtime

HELP = "Run a command in a new container from an image (like `docker run --rm`)."

DEFAULT_STOP_TIMEOUT = 10  # seconds (docker's default)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")
    parser.add_argument("--rm", action="store_true", help="accepted; containers are always removed")
    parser.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("-u", "--user", metavar="USER[:GROUP]")
    parser.add_argument("-w", "--workdir", metavar="DIR")
    parser.add_argument("--entrypoint", metavar="CMD", help="override the image's ENTRYPOINT")
    parser.add_argument("--hostname", default="", metavar="NAME")
    add_container_flags(parser)  # -d, -p, --network, -v, --restart, ... (builder.containers)
    parser.add_argument(
        "--stop-timeout",
        type=int,
        default=DEFAULT_STOP_TIMEOUT,
        metavar="SECONDS",
        help="after a forwarded SIGTERM, SIGINT or SIGHUP, how long the container has to exit"
        " before it is killed; -1: no limit (default %(default)s)",
    )
    parser.add_argument("--name", help="container name")
    parser.add_argument("--root", metavar="DIR", help="image store (default: $PYBUILD_ROOT)")


def _command(
    entrypoint: Sequence[str], cmd: Sequence[str], args: argparse.Namespace
) -> tuple[str, ...]:
    """Docker's rule: ENTRYPOINT + (COMMAND or CMD); --entrypoint drops the image's CMD."""
    if args.entrypoint is not None:
        entrypoint, cmd = ([args.entrypoint] if args.entrypoint else []), []
    if args.command:
        cmd = args.command
    argv = tuple(entrypoint) + tuple(cmd)
    if not argv:
        raise BuildError(f"{args.image}: no command specified")
    return argv


class _Phase(enum.Enum):
    SETTING_UP = "setting up"
    RUNNING = "running"
    FINISHING = "finishing"


class SignalTarget(Protocol):
    """What :class:`StopSignals` needs of the runtime (part of
    :class:`~builder.runtime.oci.Runtime`)."""

    def forward_signal(self, signum: int) -> None: ...

    def kill_all(self) -> None: ...


class StopSignals:
    """The handler of :data:`STOP_SIGNALS` for one ``pybuild run`` (see the module doc)."""

    def __init__(self, stop_timeout: float) -> None:
        self._stop_timeout = stop_timeout
        self._phase = _Phase.SETTING_UP
        self._runtime: SignalTarget | None = None
        self._kill_timer: threading.Timer | None = None

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopSignals]:
        """Handle the stop signals in the block; the handlers before it are put back after."""
        previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @contextlib.contextmanager
    def running(self, runtime: SignalTarget) -> Iterator[None]:
        """While the block runs ``runtime``'s container, signals go to the container."""
        self._runtime, self._phase = runtime, _Phase.RUNNING
        try:
            yield
        finally:
            self._runtime, self._phase = None, _Phase.FINISHING
            if self._kill_timer is not None:
                self._kill_timer.cancel()

    def _handle(self, signum: int, frame: object) -> None:
        if self._phase is _Phase.SETTING_UP:
            self._phase = _Phase.FINISHING  # a second signal must not break the clean-up
            raise Interrupted(signum)
        runtime = self._runtime
        if runtime is None:
            return  # finishing: the container has exited, its status is the answer
        runtime.forward_signal(signum)
        waiting = self._kill_timer is not None and self._kill_timer.is_alive()
        if self._stop_timeout >= 0 and not waiting:
            self._kill_timer = threading.Timer(self._stop_timeout, runtime.kill_all)
            self._kill_timer.daemon = True
            self._kill_timer.start()


@dataclass(frozen=True, slots=True)
class _ForwardingRuntime:
    """``runtime`` with the stop signals forwarded to its container while it runs."""

    runtime: Runtime
    signals: StopSignals

    def run(self, bundle: Path, spec: dict[str, Any], *, on_output: OutputCallback) -> ExitStatus:
        with self.signals.running(self.runtime):
            return self.runtime.run(bundle, spec, on_output=on_output)

    def swap_accounting(self) -> bool:
        return self.runtime.swap_accounting()

    def kill_all(self) -> None:
        self.runtime.kill_all()

    def forward_signal(self, signum: int) -> None:
        self.runtime.forward_signal(signum)

    def settle(self) -> None:
        self.runtime.settle()


def run(args: argparse.Namespace) -> int:
    if wants_container(args):
        return run_container(args)
    try:
        with StopSignals(args.stop_timeout).installed() as signals:
            return _run(args, signals)
    except Interrupted as stop:  # before the container started (see StopSignals)
        return 128 + stop.signum


def _run(args: argparse.Namespace, signals: StopSignals) -> int:
    store = open_store(args)
    record = store.resolve(args.image)
    image = store.load_image(record.descriptor)
    config = image.config.config
    env = dict(e.partition("=")[::2] for e in config.env)
    for item in args.env:
        key, sep, value = item.partition("=")
        env[key] = value if sep else ""
    argv = _command(config.entrypoint or (), config.cmd or (), args)
    env_list = tuple(f"{k}={v}" for k, v in env.items())
    process = RunStep(
        span=Span(file=args.image, line=1),  # not shown: only the scheduler attaches spans
        text=" ".join(argv),
        history=History(),
        args=argv,
        env=env_list,
        cache_env=env_list,
        user=args.user or config.user or "",
        workdir=args.workdir or config.working_dir or "/",
        network=args.network,
        hostname=args.hostname or str(record.config_digest.hex[:12]),
    )
    # with -t on a pseudo-terminal in the foreground (-i: stdin connected)
    machinery = open_machinery(
        store, runtime=args.runtime, terminal=args.tty, interactive=args.interactive
    )
    snapshotter = machinery.snapshotter

    def on_output(data: bytes) -> None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()

    with store.lease(), snapshotter.scratch_dir() as upper:
        try:
            run_on_layers(
                snapshotter.ensure(image.layers),
                upper,
                process,
                runtime=_ForwardingRuntime(machinery.runtime, signals),
                on_output=on_output,
                network=args.network,
                bundle_dir=store.root / TMP,
                overlay=snapshotter,
                init_dir=snapshotter.scratch_dir,
            )
        except RunStepError as err:
            return err.exit_code or 1
    return 0
