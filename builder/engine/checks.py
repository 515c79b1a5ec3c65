"""What the build checks learn from the store: the platform, environment and SHELL of a base
image that is already there. Nothing is pulled; an image the store lacks is unknown."""

from __future__ import annotations

from collections.abc import Callable

from builder.errors import BuildError
from builder.lint.inputs import BaseImage
from builder.oci.types import Platform
from builder.reference import parse
from builder.store import Store


def base_images(store: Store) -> Callable[[str, Platform], BaseImage | None]:
    """A ``LintInputs.base_image`` answering from ``store``."""

    def lookup(ref: str, platform: Platform) -> BaseImage | None:
        try:
            record = store.resolve(str(parse(ref)))
        except BuildError:
            return None
        try:
            image = store.load_image(record.descriptor, platform=platform)
        except BuildError:
            try:  # an index without this platform: what a build would fail on, not lint
                image = store.load_image(record.descriptor)
            except BuildError:
                return None
        config = image.config
        found = Platform(os=config.os, architecture=config.architecture, variant=config.variant)
        env = tuple((k, v) for k, _, v in (e.partition("=") for e in config.config.env))
        return BaseImage(platform=found, env=env, shell=bool(config.config.shell))

    return lookup


__all__ = ["base_images"]
