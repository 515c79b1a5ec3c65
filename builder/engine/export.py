"""Writing a built image (already in the store) to its outputs (:mod:`builder.engine.outputs`):

* ``image``: the store, named by ``name=`` (default: the ``-t`` tags); ``push=true`` also
  pushes every name with the store's push code;
* ``oci`` / ``docker``: an OCI archive or a docker-archive (``docker load``), written by the one
  archive writer ``pybuild save`` uses; ``tar=false`` writes an OCI image layout directory;
* ``tar``: the final stage's root filesystem, flattened (the layers applied in order, whiteouts
  resolved), as one plain tar;
* ``local``: that root filesystem written into ``dest`` in-root (``builder.fs``: a symlink in
  ``dest`` cannot make it write elsewhere), owners and modes as in the image; files already in
  ``dest`` that the image does not have stay;
* ``cacheonly``: nothing.

A file destination is written beside itself and renamed into place; ``dest=-`` (or no ``dest``
for a tar-like output) is stdout. An output with a compression (``--compression``, or
``compression=``/``compression-level=``) has every layer in another compression re-compressed
(BuildKit's ``force-compression=true``): the image ID stays, the manifest digest changes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from builder.digest import Digest, Hasher
from builder.engine.events import EventSink, VertexDone, VertexStarted, VertexStatus
from builder.engine.outputs import LayerCompression, Output, OutputType
from builder.errors import BuildError, StoreError
from builder.oci.archive_write import ArchiveFormat, ArchiveImage, write_archive
from builder.oci.compress import DecompressingReader, compressor
from builder.oci.descriptor import Descriptor
from builder.oci.image import ImageValue, Layer, image_from
from builder.oci.layer_apply import apply_layer
from builder.oci.layer_write import write_layer
from builder.oci.manifest import descriptor_for
from builder.oci.mediatype import Compression, layer_compression, layer_media_type
from builder.oci.mutate import convert
from builder.oci.tarformat import TarLimits
from builder.reference import parse
from builder.store import Store, StoreLayer, paths
from builder.store.fsutil import replacing


@dataclass(frozen=True, slots=True, kw_only=True)
class Exported:
    """The image as exported (its manifest after any re-compression) and its names."""

    descriptor: Descriptor
    names: tuple[str, ...]


class Exporter:
    """Writes one built image (``digest``, in ``store``) to each output, with progress."""

    def __init__(
        self,
        store: Store,
        *,
        sink: EventSink,
        next_vertex: Callable[[], int],
        stdout: BinaryIO | None = None,
    ) -> None:
        self.store = store
        self.sink = sink
        self.next_vertex = next_vertex
        self.stdout = stdout

    def export(self, digest: Digest, outputs: Sequence[Output]) -> Exported:
        store = self.store
        record = store.resolve(str(digest))
        built = store.load_image(record.descriptor)
        first: Exported | None = None
        for out in outputs:
            image = built
            if out.compression is not None and out.type not in (OutputType.TAR, OutputType.LOCAL):
                image = self._recompress(built, out.compression)
            self._one(out, image)
            if first is None and out.type is not OutputType.CACHEONLY:
                desc = descriptor_for(image.raw_manifest, image.manifest.media_type)
                first = Exported(descriptor=desc, names=out.names)
        if first is None:
            first = Exported(descriptor=record.descriptor, names=())
        return first

    @contextlib.contextmanager
    def _vertex(self, name: str) -> Iterator[int]:
        n = self.next_vertex()
        self.sink.emit(VertexStarted(vertex=n, name=name))
        try:
            yield n
        except BuildError as err:
            self.sink.emit(VertexDone(vertex=n, error=err.message))
            raise
        self.sink.emit(VertexDone(vertex=n))

    def _one(self, out: Output, image: ImageValue) -> None:
        match out.type:
            case OutputType.IMAGE:
                if out.compression is not None:  # the build named it already (store_names)
                    with self._vertex("exporting to image") as n:
                        self.store.write_image(image, out.names)
                        for name in out.names:
                            self.sink.emit(VertexStatus(vertex=n, text=f"naming to {name} done"))
                if out.push:
                    self._push(out.names)
            case OutputType.OCI | OutputType.DOCKER:
                fmt = ArchiveFormat.OCI if out.type is OutputType.OCI else ArchiveFormat.DOCKER
                items = [ArchiveImage(image=image, tags=out.names)]
                with self._vertex(f"exporting to {out.type.value} image format"):
                    if out.tar:
                        self._write_file(out, lambda f: write_archive(f, items, format=fmt))
                    else:
                        self._write_tree(
                            Path(out.dest or "."),
                            lambda f: write_archive(f, items, format=ArchiveFormat.OCI),
                            same_owner=False,
                        )
            case OutputType.TAR:
                with self._vertex("exporting to client tarball"), self._flat(image) as flat:
                    self._write_file(out, lambda f: _rootfs_tar(flat, f))
            case OutputType.LOCAL:
                with self._vertex("exporting to client directory"), self._flat(image) as flat:
                    self._write_tree(
                        Path(out.dest or "."), lambda f: _rootfs_tar(flat, f), same_owner=True
                    )
            case OutputType.CACHEONLY:
                pass

    def _push(self, names: Sequence[str]) -> None:
        # lazy: only pushing outputs load the registry client (httpx)
        from builder.registry.client import RegistryClient
        from builder.registry.remote import push_image

        with RegistryClient.from_environment() as client:
            for name in names:
                with self._vertex(f"pushing {parse(name)}") as n:
                    result = push_image(self.store, name, client=client)
                    self.sink.emit(VertexStatus(vertex=n, text=f"digest: {result.digest} done"))

    def _recompress(self, image: ImageValue, want: LayerCompression) -> ImageValue:
        if want.compression is Compression.ZSTD and image.is_docker:
            image = convert(image, docker=False)  # docker schema 2 has no zstd layer type
        layers: list[Layer] = []
        changed = False
        for layer in image.layers:
            have = layer_compression(layer.descriptor.media_type)
            if have is None or have is want.compression:
                layers.append(layer)
                continue
            layers.append(self._recompress_layer(layer, want, docker=image.is_docker))
            changed = True
        if not changed:
            return image
        return image_from(image.manifest, image.config, tuple(layers))

    def _recompress_layer(self, layer: Layer, want: LayerCompression, *, docker: bool) -> Layer:
        store = self.store
        media_type = layer_media_type(want.compression, docker=docker)
        comp = compressor(want.compression, level=want.level)
        diff = Hasher()
        name = f"layer {layer.descriptor.digest}"
        with (
            store.lease(),
            store.blob_writer(media_type=media_type) as writer,
            layer.open_compressed() as raw,
        ):
            reader = DecompressingReader(raw, max_bytes=TarLimits().max_bytes, name=name)
            while chunk := reader.read(1 << 20):
                diff.update(chunk)
                writer.write(comp.compress(chunk))
            writer.write(comp.flush())
            if diff.digest() != layer.diff_id:
                raise StoreError(f"{name}: content is {diff.digest()}, not {layer.diff_id}")
            desc = writer.commit()
        return StoreLayer(cas=store.cas, descriptor=desc, diff_id=layer.diff_id)

    @contextlib.contextmanager
    def _flat(self, image: ImageValue) -> Iterator[Path]:
        """The image's root filesystem: its layers applied in order into a temporary
        directory of the store (owners kept)."""
        tmp = self.store.root / paths.TMP
        tmp.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="export-", dir=tmp))
        try:
            for i, layer in enumerate(image.layers):
                with layer.open_compressed() as stream:
                    apply_layer(
                        stream,
                        work,
                        expected_diff_id=layer.diff_id,
                        same_owner=True,
                        name=f"layer {i}",
                    )
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _write_file(self, out: Output, write: Callable[[BinaryIO], None]) -> None:
        if out.dest in (None, "-"):
            stream = self.stdout or sys.stdout.buffer
            write(stream)
            stream.flush()
            return
        try:
            with replacing(Path(out.dest), prefix=".pybuild_output_") as fh:
                write(fh)
        except OSError as exc:
            raise BuildError(f"failed to export to {out.dest}: {exc.strerror}") from None

    def _write_tree(
        self, dest: Path, write: Callable[[BinaryIO], None], *, same_owner: bool
    ) -> None:
        """Extract what ``write`` produces (a plain tar, streamed through a pipe) into
        ``dest``, in-root; existing files of ``dest`` that the tar does not name stay."""
        try:
            dest.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BuildError(f"failed to export to {dest}: {exc.strerror}") from None
        read_fd, write_fd = os.pipe()
        failure: list[BaseException] = []

        def produce() -> None:
            try:
                with open(write_fd, "wb") as fh:
                    write(fh)
            except BrokenPipeError:
                pass  # the reader failed and says why
            except BaseException as exc:  # handed to the caller's thread
                failure.append(exc)

        thread = threading.Thread(target=produce, name="export-writer", daemon=True)
        thread.start()
        try:
            with open(read_fd, "rb") as fh:
                apply_layer(fh, dest, same_owner=same_owner, name=f"output {dest}")
        except OSError as exc:
            raise BuildError(f"failed to export to {dest}: {exc.strerror}") from None
        finally:
            thread.join()
        if failure:
            raise failure[0]


def _rootfs_tar(root: Path, out: BinaryIO) -> None:
    """``root`` as one plain tar (the layer writer: sorted, owners and modes kept)."""
    write_layer(root, _Plain(out), compression=Compression.NONE)


class _Plain:
    """A file as the layer writer's sink."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out

    def write(self, data: bytes, /) -> int:
        return self._out.write(data)

    def flush(self) -> None:
        self._out.flush()


__all__ = ["Exported", "Exporter"]
