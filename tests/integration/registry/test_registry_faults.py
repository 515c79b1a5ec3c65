"""Fault injection between pybuild and a real registry (SECURITY.md cases 20-24).

Each misbehaviour ends either in a successful retry (transient faults) or in a one-line error
naming the reference and the cause; in every case the store holds only verified blobs
(``fsck`` clean, nothing left in ``ingest/``) and no tag points at a partial image.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from regserver import Fault, FaultProxy, RegistryServer, StorageServer, make_image

from builder.digest import Digest
from builder.errors import RegistryError
from builder.oci.image import ImageValue
from builder.registry.client import RegistryClient
from builder.registry.remote import pull_image, push_image
from builder.store import Store
from builder.store.fsck import fsck

pytestmark = pytest.mark.integration

MakeClient = Callable[..., RegistryClient]
BLOB = r"/v2/faults/[a-z0-9]+/blobs/sha256:"
MANIFEST = r"/v2/faults/[a-z0-9]+/manifests/"


@pytest.fixture
def proxy(
    registry: RegistryServer, make_proxy: Callable[[RegistryServer], FaultProxy]
) -> FaultProxy:
    return make_proxy(registry)


_counter = iter(range(10_000))


@pytest.fixture
def pushed(proxy: FaultProxy, store: Store, make_client: MakeClient) -> tuple[str, ImageValue]:
    """An image (two layers, one of 200 kB) pushed through the proxy without faults."""
    ref = f"{proxy.host}/faults/img{next(_counter)}:v1"
    image = make_image(store, (ref,), layer_sizes=(3000, 200_000), seed=20)
    push_image(store, ref, client=make_client())
    return ref, image


def _assert_clean(store: Store) -> None:
    report = fsck(store)
    assert report.ok, report.problems
    assert not list((store.root / "ingest").iterdir())


def _big_layer(image: ImageValue) -> Digest:
    return max(image.layers, key=lambda layer: layer.descriptor.size).descriptor.digest


def _fails(store: Store, ref: str, client: RegistryClient) -> RegistryError:
    with pytest.raises(RegistryError) as info:
        pull_image(store, ref, client=client)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(ref.removeprefix("docker.io/") + ": ")
    _assert_clean(store)
    assert store.list_images() == ()
    return info.value


def test_wrong_bytes_in_each_blob_are_refused(
    proxy: FaultProxy,
    pushed: tuple[str, ImageValue],
    other_store: Store,
    make_client: MakeClient,
) -> None:
    """umoci's hardening idea: corrupt every blob in turn, each pull must fail cleanly."""
    ref, image = pushed
    blobs = [image.manifest.config.digest, *(layer.descriptor.digest for layer in image.layers)]
    for digest in blobs:
        proxy.faults = [Fault("GET", f"/blobs/{digest}", "corrupt")]
        fresh = Store.open(other_store.root.parent / f"fresh-{digest.short}")
        err = _fails(fresh, ref, make_client())
        assert f"blob {digest}" in str(err)
        assert "content hashes to" in str(err)


def test_manifest_whose_digest_does_not_match(
    proxy: FaultProxy, pushed: tuple[str, ImageValue], other_store: Store, make_client: MakeClient
) -> None:
    ref, image = pushed

    def tamper(data: bytes) -> bytes:
        doc = json.loads(data)
        doc["annotations"] = {"evil": "yes"}
        return json.dumps(doc).encode()

    proxy.faults = [Fault("GET", MANIFEST, "rewrite", rewrite=tamper)]
    err = _fails(other_store, ref, make_client())
    assert "manifest digest mismatch: Docker-Content-Digest says" in str(err)

    by_digest = ref.rsplit(":", 1)[0] + f"@{image.digest}"
    proxy.faults = [Fault("GET", MANIFEST, "rewrite_consistent", rewrite=tamper)]
    err = _fails(other_store, by_digest, make_client())
    assert f"requested {image.digest}" in str(err)


def test_registry_lying_about_sizes(
    proxy: FaultProxy, pushed: tuple[str, ImageValue], other_store: Store, make_client: MakeClient
) -> None:
    ref, image = pushed
    big = _big_layer(image)
    # the blob response carries more bytes than the descriptor says
    proxy.faults = [Fault("GET", f"/blobs/{big}", "extend")]
    err = _fails(other_store, ref, make_client())
    assert f"blob {big}" in str(err)

    # a self-consistent manifest (digest header fixed) that lies about a layer's size
    def grow(data: bytes) -> bytes:
        doc = json.loads(data)
        for layer in doc["layers"]:
            layer["size"] += 7
        return json.dumps(doc).encode()

    proxy.faults = [Fault("GET", MANIFEST, "rewrite_consistent", rewrite=grow)]
    err = _fails(other_store, ref, make_client())
    assert "bytes for a blob of" in str(err)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: {**d, "layers": [{**d["layers"][0], "digest": "sha256:../../x"}]}, "invalid"),
        (
            lambda d: {
                **d,
                "layers": [{**d["layers"][0], "digest": d["layers"][0]["digest"].upper()}],
            },
            "invalid",
        ),
        (lambda d: {**d, "manifests": []}, "malicious or ambiguous manifest"),
        (lambda d: {**d, "annotations": {"pad": " " * (5 << 20)}}, "exceeds the 4194304-byte"),
        (lambda d: {**d, "layers": [{**d["layers"][0], "size": -1}]}, "negative size"),
        (lambda d: {**d, "config": {**d["config"], "size": 10**10}}, "image config of"),
    ],
    ids=["dotdot-digest", "uppercase-digest", "ambiguous", "5MB", "negative-size", "huge-config"],
)
def test_malicious_manifests_are_refused_before_any_blob(
    *,
    change: Callable[[dict[str, object]], dict[str, object]],
    message: str,
    proxy: FaultProxy,
    pushed: tuple[str, ImageValue],
    other_store: Store,
    make_client: MakeClient,
) -> None:
    ref, _ = pushed

    def rewrite(data: bytes) -> bytes:
        return json.dumps(change(json.loads(data))).encode()

    proxy.faults = [Fault("GET", MANIFEST, "rewrite_consistent", rewrite=rewrite)]
    err = _fails(other_store, ref, make_client())
    assert message in str(err)
    assert not proxy.requests("GET", BLOB)
    assert not list(other_store.cas.digests())


def test_dropped_connection_resumes_with_range(
    proxy: FaultProxy, pushed: tuple[str, ImageValue], other_store: Store, make_client: MakeClient
) -> None:
    ref, image = pushed
    big = _big_layer(image)
    proxy.faults = [Fault("GET", f"/blobs/{big}", "drop", times=2, keep=50_000)]
    result = pull_image(other_store, ref, client=make_client())
    assert result.record.digest == image.digest
    ranged = [e for e in proxy.requests("GET", f"/blobs/{big}") if "range" in e[3]]
    assert ranged
    assert ranged[0][3]["range"] == "bytes=50000-"
    _assert_clean(other_store)


def test_short_bodies_every_time_end_in_an_error(
    proxy: FaultProxy, pushed: tuple[str, ImageValue], other_store: Store, make_client: MakeClient
) -> None:
    ref, image = pushed
    big = _big_layer(image)
    proxy.faults = [Fault("GET", f"/blobs/{big}", "drop", keep=10)]
    err = _fails(other_store, ref, make_client(attempts=3))
    assert f"blob {big}" in str(err)
    assert err.temporary


def test_500_then_success_and_500_forever(
    proxy: FaultProxy, pushed: tuple[str, ImageValue], other_store: Store, make_client: MakeClient
) -> None:
    ref, image = pushed
    proxy.faults = [Fault("GET", MANIFEST, "status", status=500, times=2)]
    assert pull_image(other_store, ref, client=make_client()).record.digest == image.digest
    _assert_clean(other_store)

    proxy.faults = [Fault("GET", MANIFEST, "status", status=503)]
    fresh = Store.open(other_store.root.parent / "fresh")
    err = _fails(fresh, ref, make_client(attempts=3))
    assert "registry error (HTTP 503)" in str(err)
    assert len(proxy.requests("GET", MANIFEST)) >= 3


def test_429_honours_retry_after(
    proxy: FaultProxy,
    pushed: tuple[str, ImageValue],
    other_store: Store,
    make_client: MakeClient,
    sleeps: list[float],
) -> None:
    ref, image = pushed
    proxy.faults = [Fault("GET", BLOB, "status", status=429, times=1, headers={"Retry-After": "3"})]
    assert pull_image(other_store, ref, client=make_client()).record.digest == image.digest
    assert 3.0 in sleeps


def test_stalled_body_times_out(
    proxy: FaultProxy, pushed: tuple[str, ImageValue], other_store: Store, make_client: MakeClient
) -> None:
    ref, image = pushed
    big = _big_layer(image)
    proxy.faults = [Fault("GET", f"/blobs/{big}", "stall", keep=1000, delay=1.5)]
    err = _fails(other_store, ref, make_client(attempts=2, read_timeout=0.3))
    assert "timed out waiting for data" in str(err)


def test_redirect_loop_stops_after_ten(
    proxy: FaultProxy, pushed: tuple[str, ImageValue], other_store: Store, make_client: MakeClient
) -> None:
    ref, image = pushed
    big = _big_layer(image)
    proxy.faults = [Fault("GET", f"/blobs/{big}", "redirect_loop")]
    err = _fails(other_store, ref, make_client())
    assert "stopped after 10 redirects" in str(err)
    assert len(proxy.requests("GET", f"/blobs/{big}")) == 11


def test_blob_redirect_to_other_host_works(
    proxy: FaultProxy,
    pushed: tuple[str, ImageValue],
    other_store: Store,
    storage_server: StorageServer,
    make_client: MakeClient,
) -> None:
    ref, image = pushed
    proxy.faults = [Fault("GET", BLOB, "redirect_storage")]
    assert pull_image(other_store, ref, client=make_client()).record.digest == image.digest
    assert len(storage_server.seen) == len(image.layers) + 1
    _assert_clean(other_store)


def test_push_faults(proxy: FaultProxy, store: Store, make_client: MakeClient) -> None:
    ref = f"{proxy.host}/faults/pushed:v1"
    image = make_image(store, (ref,), seed=21)
    wrong = "sha256:" + "0" * 64
    proxy.faults = [Fault("PUT", MANIFEST, "headers", headers={"Docker-Content-Digest": wrong})]
    with pytest.raises(RegistryError) as info:
        push_image(store, ref, client=make_client())
    assert str(info.value) == (
        f"{ref}: the registry stored the manifest as {wrong}, expected {image.digest}"
    )

    proxy.faults = [Fault("PUT", MANIFEST, "status", status=413)]
    with pytest.raises(RegistryError) as info:
        push_image(store, ref, client=make_client())
    assert "too large (HTTP 413)" in str(info.value)

    # a failed upload is retried from the start and succeeds
    proxy.faults = [Fault("PUT", r"/blobs/uploads/", "status", status=502, times=1)]
    other = f"{proxy.host}/faults/pushed2:v1"
    fresh = make_image(store, (other,), seed=23)
    assert push_image(store, other, client=make_client()).digest == fresh.digest
    assert [e[2] for e in proxy.requests("PUT", r"/v2/faults/pushed2/blobs/uploads/")].count(
        502
    ) == 1


def test_push_refuses_a_corrupt_local_blob(
    proxy: FaultProxy, store: Store, make_client: MakeClient
) -> None:
    ref = f"{proxy.host}/faults/corrupt:v1"
    image = make_image(store, (ref,), layer_sizes=(50_000,), seed=22)
    digest = image.layers[0].descriptor.digest
    path = store.cas.blob_path(digest)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(RegistryError) as info:
        push_image(store, ref, client=make_client())
    assert f"blob {digest}" in str(info.value)
    assert "corrupt" in str(info.value)
    # the registry never got the whole (unverified) blob
    assert not [e for e in proxy.requests("PUT", f"digest=sha256%3A{digest.hex}") if e[2] == 201]
