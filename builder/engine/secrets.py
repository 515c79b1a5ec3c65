"""Build secrets: ``--secret id=X[,src=FILE|,env=VAR][,type=file|env]`` as buildx reads them.

:func:`parse_secret_spec` follows buildx's parser (a CSV line of ``key=value`` fields: ``id``,
``type``, ``src``/``source``, ``env``); :func:`secret_store` checks the specs as BuildKit's
secrets provider does (``id=X`` alone reads the environment variable ``X`` when it is set, else
the file ``X``; a file must exist and hold at most 500KB). Values are read only when a
``RUN --mount=type=secret`` step asks for them, are never cached, and appear in no message.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from builder.errors import BuildError

__all__ = [
    "MAX_SECRET_BYTES",
    "SecretSpec",
    "SecretStore",
    "parse_secret_spec",
    "secret_store",
]

MAX_SECRET_BYTES: Final = 500 * 1024  # BuildKit's limit


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretSpec:
    """One ``--secret``: its id and where its value comes from (a file or a variable).

    Neither set: resolved by :func:`secret_store` (the variable ``id`` if set, else the file).
    """

    id: str
    file: str | None = None
    env: str | None = None


def parse_secret_spec(text: str) -> SecretSpec:
    """``id=X[,type=file|env][,src=FILE][,env=VAR]`` as buildx parses ``--secret``."""
    try:
        fields = next(csv.reader([text]), [])
    except csv.Error as exc:
        raise BuildError(f"failed to parse csv secret: {exc}") from None
    kind = ""
    secret_id = ""
    file: str | None = None
    env: str | None = None
    for field in fields:
        key, sep, value = field.partition("=")
        key = key.lower()
        if not sep:
            raise BuildError(f"invalid field '{field}' must be a key=value pair")
        match key:
            case "type":
                if value not in ("file", "env"):
                    raise BuildError(f'unsupported secret type "{value}"')
                kind = value
            case "id":
                secret_id = value
            case "source" | "src":
                file = value
            case "env":
                env = value
            case _:
                raise BuildError(f"unexpected key '{key}' in '{field}'")
    if kind == "env" and not env:
        env, file = file, None
    if not secret_id:
        raise BuildError(f"secret ID missing in {text!r}")
    return SecretSpec(id=secret_id, file=file or None, env=env or None)


class SecretStore:
    """The build's secrets by id; :meth:`get` reads a value when a step mounts it."""

    def __init__(self, specs: Mapping[str, SecretSpec]) -> None:
        self._specs = dict(specs)

    def __contains__(self, secret_id: object) -> bool:
        return secret_id in self._specs

    def get(self, secret_id: str) -> bytes | None:
        """The value, or None when the id was not given (or its variable is unset)."""
        spec = self._specs.get(secret_id)
        if spec is None:
            return None
        if spec.env is not None:
            value = os.environb.get(os.fsencode(spec.env))
            if value is None:
                return None
            data = bytes(value)
        else:
            assert spec.file is not None  # secret_store sets one of the two
            try:
                with open(spec.file, "rb") as f:
                    data = f.read(MAX_SECRET_BYTES + 1)
            except OSError as exc:
                raise BuildError(
                    f"secret {secret_id}: failed to read {spec.file}: {exc.strerror}"
                ) from None
        if len(data) > MAX_SECRET_BYTES:
            raise BuildError(f"secret {secret_id} too big. max size 500KB")
        return data


def secret_store(specs: Iterable[SecretSpec]) -> SecretStore:
    """Check ``specs`` as BuildKit's provider does; the last spec of an id wins."""
    resolved: dict[str, SecretSpec] = {}
    for spec in specs:
        if spec.file is None and spec.env is None:
            if spec.id in os.environ:
                spec = SecretSpec(id=spec.id, env=spec.id)
            else:
                spec = SecretSpec(id=spec.id, file=spec.id)
        if spec.file is not None:
            try:
                size = os.stat(spec.file).st_size
            except OSError as exc:
                raise BuildError(f"failed to stat {spec.file}: {exc.strerror}") from None
            if size > MAX_SECRET_BYTES:
                raise BuildError(f"secret {spec.id} too big. max size 500KB")
        resolved[spec.id] = spec
    return SecretStore(resolved)
