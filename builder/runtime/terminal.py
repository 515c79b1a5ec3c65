"""``pybuild run -t``: the container's process on a pseudo-terminal, in the foreground.

runc itself allocates the pty when the spec says ``process.terminal`` and it runs in the
foreground without ``--console-socket``: it puts the caller's terminal in raw mode and copies
between it and the pty, so an interactive shell works (``-i`` keeps stdin connected; without
it stdin is /dev/null). The output goes straight to the caller's terminal, not through
``on_output``. Everything else (state root, cgroups, clean-up) is :class:`Runc`'s.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from builder.runtime.oci import (
    ExitStatus,
    OutputCallback,
    Runc,
    cgroup_layout,
    cgroups_path_for,
    exit_code,
    read_runc_log,
)


class TerminalRunc(Runc):
    def __init__(
        self, binary: str | None = None, *, root: Path | None = None, interactive: bool = False
    ) -> None:
        super().__init__(binary, root=root)
        self.interactive = interactive

    def run(self, bundle: Path, spec: dict[str, Any], *, on_output: OutputCallback) -> ExitStatus:
        exe = self.executable()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        container_id = f"pybuild-{os.urandom(8).hex()}"
        doc = dict(spec)
        doc["process"] = {**spec["process"], "terminal": True}
        doc["linux"] = {
            **spec.get("linux", {}),
            "cgroupsPath": cgroups_path_for(container_id, cgroup_layout()),
        }
        (bundle / "config.json").write_text(json.dumps(doc, separators=(",", ":")))
        log = bundle / f"{self.name}.log"
        cmd = [*self._base(exe), "--log", str(log), "--log-format", "json", "run"]
        cmd += ["--bundle", str(bundle), container_id]
        proc = subprocess.Popen(
            cmd, stdin=None if self.interactive else subprocess.DEVNULL, close_fds=True
        )
        with self._live_lock:
            self._live[container_id] = proc
        try:
            code = exit_code(proc.wait())
        except BaseException:
            self._kill(exe, container_id, proc)
            raise
        finally:
            with self._live_lock:
                self._live.pop(container_id, None)
            self._call(exe, "delete", "--force", container_id)
        return ExitStatus(code=code, runtime_error=read_runc_log(log) if code else "")
