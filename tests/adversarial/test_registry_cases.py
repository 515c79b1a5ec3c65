"""Checklist cases 20-24 (docs/SECURITY.md section 3, Registry faults): ``pybuild pull`` and
``pybuild push`` through a fault proxy in front of a real ``docker-registry`` on 127.0.0.1.
Each fault ends in one error line naming the digest or reference, or in a verified retry; the
pulling store holds no unverified blob, no ingest and no name afterwards."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from advkit import Result, Sentinels, assert_clean_error, assert_store_consistent, run_pybuild
from enginekit import Builder
from regserver import Fault, FaultProxy, RegistryServer, StorageServer, ToolMissingError

from builder.store import Store

pytestmark = pytest.mark.integration

MANIFEST = r"/v2/adv/[a-z0-9]+/manifests/"
BLOB = r"/v2/adv/[a-z0-9]+/blobs/sha256:"
# below the 4 s stall of case 23, above a busy machine's pauses
FAST = {"PYBUILD_REGISTRY_TIMEOUT": "2"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    try:
        server = RegistryServer(tmp_path_factory.mktemp("adv-registry")).start()
    except ToolMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def storage() -> Iterator[StorageServer]:
    server = StorageServer()
    yield server
    server.stop()


@pytest.fixture
def proxy(registry: RegistryServer, storage: StorageServer) -> Iterator[FaultProxy]:
    served = FaultProxy(registry.host, storage=storage)
    yield served
    served.stop()


@pytest.fixture
def pushed(pb: Builder, registry: RegistryServer) -> str:
    """busybox pushed to the registry as adv/<random>:v1; the repository path (no host)."""
    repo = f"adv/b{uuid.uuid4().hex[:10]}:v1"
    target = f"{registry.host}/{repo}"
    pb.cli("tag", "busybox:latest", target, check=True)
    pb.cli("push", target, check=True)
    pb.cli("rmi", target, check=True)
    return repo


def blobs_of(pb: Builder) -> list[tuple[str, int]]:
    """(digest, size) of busybox's config and layers."""
    store = Store.open(pb.store_root)
    image = store.load_image(store.resolve("busybox:latest").descriptor)
    config = image.manifest.config
    return [(str(config.digest), config.size)] + [
        (str(layer.descriptor.digest), layer.descriptor.size) for layer in image.layers
    ]


def pull(fresh: Path, ref: str, env: dict[str, str] | None = None) -> Result:
    return run_pybuild(["pull", "--root", str(fresh), ref], store_root=fresh, cwd=fresh, env=env)


def assert_nothing_stored(fresh: Path) -> None:
    assert_store_consistent(fresh)
    assert Store.open(fresh).list_images() == ()
    stored = list((fresh / "blobs" / "sha256").iterdir()) if (fresh / "blobs").is_dir() else []
    # a pull may keep the verified blobs it finished (a re-pull reuses them): never a bad one
    for blob in stored:
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name


def fresh_store(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    Store.open(root)
    return root


# --------------------------------------------------------------------------- case 20


@pytest.mark.parametrize("action", ["corrupt", "extend", "short"])
def test_case_20_wrong_bytes_in_every_blob(
    *,
    pb: Builder,
    proxy: FaultProxy,
    pushed: str,
    sentinels: Sentinels,
    tmp_path: Path,
    action: str,
) -> None:
    ref = f"{proxy.host}/{pushed}"
    for digest, _ in blobs_of(pb):
        if action == "short":  # a complete response, one byte short of the blob
            fault = Fault("GET", f"/blobs/{digest}", "rewrite", rewrite=lambda b: b[:-1])
        else:
            fault = Fault("GET", f"/blobs/{digest}", action)
        proxy.faults = [fault]
        fresh = fresh_store(tmp_path, f"{action}-{digest[7:19]}")
        result = pull(fresh, ref, FAST)
        assert_clean_error(result, must_name=digest)
        assert not list((fresh / "ingest").iterdir())
        assert not (fresh / "blobs" / "sha256" / digest.removeprefix("sha256:")).exists()
        assert_nothing_stored(fresh)
        proxy.faults = []
        again = pull(fresh, ref, FAST)  # the same pull, once the registry behaves
        assert again.returncode == 0, again.stderr
        assert_store_consistent(fresh)


# --------------------------------------------------------------------------- case 21


def _rewrite(change: str) -> Callable[[bytes], bytes]:
    def rewrite(data: bytes) -> bytes:
        doc = json.loads(data)
        match change:
            case "5MB":
                doc["annotations"] = {"pad": " " * (5 << 20)}
            case "manifests-and-layers":
                doc["manifests"] = [doc["config"]]
            case "dotdot-digest":
                doc["layers"][0]["digest"] = "sha256:../../x"
            case "uppercase-digest":
                doc["layers"][0]["digest"] = (
                    doc["layers"][0]["digest"].upper().replace("SHA256", "sha256")
                )
        return json.dumps(doc).encode()

    return rewrite


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("5MB", "exceeds the 4194304-byte"),
        ("manifests-and-layers", "malicious or ambiguous manifest"),
        ("dotdot-digest", "sha256:../../x"),
        ("uppercase-digest", "invalid"),
        ("content-type", ""),
    ],
)
def test_case_21_malicious_manifests(
    *,
    pb: Builder,
    proxy: FaultProxy,
    pushed: str,
    sentinels: Sentinels,
    tmp_path: Path,
    change: str,
    message: str,
) -> None:
    if change == "content-type":
        index = "application/vnd.oci.image.index.v1+json"
        proxy.faults = [Fault("GET", MANIFEST, "headers", headers={"Content-Type": index})]
    else:
        proxy.faults = [Fault("GET", MANIFEST, "rewrite_consistent", rewrite=_rewrite(change))]
    fresh = fresh_store(tmp_path, "fresh")
    ref = f"{proxy.host}/{pushed}"
    line = assert_clean_error(pull(fresh, ref, FAST), must_name=ref)
    assert message in line
    assert not proxy.requests("GET", BLOB)  # refused before any blob (no filesystem work)
    assert not list((fresh / "blobs" / "sha256").iterdir())
    assert_nothing_stored(fresh)


# --------------------------------------------------------------------------- case 22


def test_case_22_redirect_loop_stops_after_ten(
    pb: Builder, proxy: FaultProxy, pushed: str, sentinels: Sentinels, tmp_path: Path
) -> None:
    layer = blobs_of(pb)[1][0]
    proxy.faults = [Fault("GET", f"/blobs/{layer}", "redirect_loop")]
    fresh = fresh_store(tmp_path, "fresh")
    line = assert_clean_error(pull(fresh, f"{proxy.host}/{pushed}", FAST), must_name=layer)
    assert "stopped after 10 redirects" in line
    assert len(proxy.requests("GET", f"/blobs/{layer}")) == 11
    assert_nothing_stored(fresh)


def test_case_22_cross_host_redirect_carries_no_authorization(
    *,
    pb: Builder,
    proxy: FaultProxy,
    storage: StorageServer,
    pushed: str,
    sentinels: Sentinels,
    tmp_path: Path,
) -> None:
    config = tmp_path / "docker"
    config.mkdir()
    auth = "Basic dXNlcjpzM2NyZXQ="  # user:s3cret
    (config / "config.json").write_text(
        json.dumps({"auths": {proxy.host: {"auth": auth.removeprefix("Basic ")}}})
    )
    proxy.faults = [
        Fault("GET", BLOB, "redirect_storage"),
        # the registry asks for credentials once, so the client has them to (not) forward
        Fault(
            "GET",
            r"/v2/$",
            "status",
            status=401,
            times=1,
            headers={"WWW-Authenticate": f'Basic realm="{proxy.host}"'},
        ),
    ]
    fresh = fresh_store(tmp_path, "fresh")
    result = pull(fresh, f"{proxy.host}/{pushed}", {**FAST, "DOCKER_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr
    assert storage.seen, "the blobs came from the other origin"
    assert all("authorization" not in headers for headers in storage.seen)
    assert_store_consistent(fresh)


def test_case_22_foreign_urls_are_never_fetched(
    pb: Builder, proxy: FaultProxy, storage: StorageServer, pushed: str, sentinels: Sentinels
) -> None:
    """A layer that names foreign ``urls`` (another origin) is still pulled from the registry,
    by digest: the URLs get no request at all, so no credentials either."""
    foreign = storage.put(b"not the layer")

    def add_urls(data: bytes) -> bytes:
        doc = json.loads(data)
        for layer in doc["layers"]:
            layer["urls"] = [foreign]
        return json.dumps(doc).encode()

    proxy.faults = [Fault("GET", MANIFEST, "rewrite_consistent", rewrite=add_urls)]
    fresh = fresh_store(pb.workdir, "fresh")
    result = pull(fresh, f"{proxy.host}/{pushed}", FAST)
    assert result.returncode == 0, result.stderr
    assert storage.seen == []
    assert_store_consistent(fresh)


# --------------------------------------------------------------------------- case 23


def test_case_23_stalled_body_times_out(
    pb: Builder, proxy: FaultProxy, pushed: str, sentinels: Sentinels, tmp_path: Path
) -> None:
    layer = blobs_of(pb)[1][0]
    proxy.faults = [Fault("GET", f"/blobs/{layer}", "stall", keep=1000, delay=4.0)]
    fresh = fresh_store(tmp_path, "fresh")
    line = assert_clean_error(pull(fresh, f"{proxy.host}/{pushed}", FAST), must_name=layer)
    assert "timed out" in line
    assert_nothing_stored(fresh)


def test_case_23_transient_statuses_are_retried(
    pb: Builder, proxy: FaultProxy, pushed: str, sentinels: Sentinels, tmp_path: Path
) -> None:
    ref = f"{proxy.host}/{pushed}"
    proxy.faults = [
        Fault("GET", BLOB, "status", status=429, times=1, headers={"Retry-After": "1"}),
        Fault("GET", MANIFEST, "status", status=503, times=2),
    ]
    fresh = fresh_store(tmp_path, "retried")
    assert pull(fresh, ref, FAST).returncode == 0
    assert [e[2] for e in proxy.requests("GET", MANIFEST)][:2] == [503, 503]
    assert_store_consistent(fresh)
    proxy.faults = [Fault("GET", MANIFEST, "status", status=503)]
    other = fresh_store(tmp_path, "forever")
    line = assert_clean_error(pull(other, ref, FAST), must_name=ref.rpartition(":")[0])
    assert "503" in line
    assert 2 <= len([e for e in proxy.requests("GET", MANIFEST) if e[2] == 503]) - 2 <= 10
    assert_nothing_stored(other)


def test_case_23_connection_reset_mid_blob_resumes(
    pb: Builder, proxy: FaultProxy, pushed: str, sentinels: Sentinels, tmp_path: Path
) -> None:
    layer, size = blobs_of(pb)[1]
    proxy.faults = [Fault("GET", f"/blobs/{layer}", "drop", times=2, keep=size // 2)]
    fresh = fresh_store(tmp_path, "fresh")
    result = pull(fresh, f"{proxy.host}/{pushed}", FAST)
    assert result.returncode == 0, result.stderr
    assert len(proxy.requests("GET", f"/blobs/{layer}")) == 3
    assert_store_consistent(fresh)  # fsck re-verifies every digest


# --------------------------------------------------------------------------- case 24


@pytest.mark.parametrize("fault", ["wrong-digest", "413"])
def test_case_24_push_faults(
    pb: Builder, proxy: FaultProxy, sentinels: Sentinels, fault: str
) -> None:
    target = f"{proxy.host}/adv/p{uuid.uuid4().hex[:10]}:v1"
    pb.cli("tag", "busybox:latest", target, check=True)
    wrong = "sha256:" + "0" * 64
    if fault == "wrong-digest":
        headers = {"Docker-Content-Digest": wrong}
        proxy.faults = [Fault("PUT", MANIFEST, "headers", headers=headers)]
        message = f"the registry stored the manifest as {wrong}"
    else:
        proxy.faults = [Fault("PUT", MANIFEST, "status", status=413)]
        message = "too large (HTTP 413)"
    result = run_pybuild(["push", target], store_root=pb.store_root, cwd=pb.workdir, env=FAST)
    line = assert_clean_error(result, must_name=target.rpartition(":")[0])
    assert message in line
    assert_store_consistent(pb.store_root)
    proxy.faults = []
    again = run_pybuild(["push", target], store_root=pb.store_root, cwd=pb.workdir, env=FAST)
    assert again.returncode == 0, again.stderr
    pb.cli("rmi", target, check=True)
