"""The bounded HTTP download: redirect rules, credentials, caps (httpx MockTransport; the real
server tests are tests/integration/test_context_tarball.py)."""

from __future__ import annotations

import io

import httpx
import pytest

from builder.context.download import DownloadLimits, download
from builder.errors import ContextError


def serve(routes: dict[str, httpx.Response], seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        found = routes.get(str(request.url))
        if found is None:
            return httpx.Response(404)
        if isinstance(found.stream, httpx.ByteStream):  # a fresh response for each request
            return httpx.Response(found.status_code, headers=found.headers, content=found.content)
        return found

    return httpx.MockTransport(handler)


def redirect(location: str) -> httpx.Response:
    return httpx.Response(302, headers={"Location": location})


def test_body_digest_and_headers() -> None:
    seen: list[httpx.Request] = []
    routes = {
        "https://a.test/f": httpx.Response(
            200,
            content=b"hello",
            headers={"Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT"},
        )
    }
    out = io.BytesIO()
    got = download("https://a.test/f", out, transport=serve(routes, seen))
    assert out.getvalue() == b"hello"
    assert got.size == 5
    assert got.digest.hex == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert got.last_modified == "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("http://a.test/f", "redirect from https to http refused"),
        ("ftp://a.test/f", "redirect to a ftp URL refused"),
        ("file:///etc/passwd", "redirect to a file URL refused"),
    ],
)
def test_refused_redirects(location: str, message: str) -> None:
    routes = {"https://a.test/start": redirect(location)}
    with pytest.raises(ContextError, match=message) as info:
        download("https://a.test/start", io.BytesIO(), transport=serve(routes, []))
    assert str(info.value).startswith("https://a.test/start: ")


def test_ten_redirects_pass_eleven_fail() -> None:
    routes = {f"https://a.test/{i}": redirect(f"/{i + 1}") for i in range(11)}
    routes["https://a.test/11"] = httpx.Response(200, content=b"end")
    ok = download("https://a.test/1", io.BytesIO(), transport=serve(routes, []))
    assert ok.final_url == "https://a.test/11"
    with pytest.raises(ContextError, match="stopped after 10 redirects"):
        download("https://a.test/0", io.BytesIO(), transport=serve(routes, []))


def test_credentials_stay_with_their_origin() -> None:
    seen: list[httpx.Request] = []
    routes = {
        "https://a.test/f": redirect("https://a.test/g"),
        "https://a.test/g": redirect("https://b.test/h"),
        "https://b.test/h": redirect("https://a.test:8443/i"),
        "https://a.test:8443/i": httpx.Response(200, content=b"x"),
    }
    download("https://u:p@a.test/f", io.BytesIO(), transport=serve(routes, seen))
    auth = [(str(r.url), r.headers.get("Authorization")) for r in seen]
    assert auth == [
        ("https://a.test/f", "Basic dTpw"),
        ("https://a.test/g", "Basic dTpw"),
        ("https://b.test/h", None),
        ("https://a.test:8443/i", None),
    ]


def test_size_cap_declared_and_streamed() -> None:
    limits = DownloadLimits(max_bytes=4)
    declared = {"https://a.test/f": httpx.Response(200, content=b"12345")}
    with pytest.raises(ContextError, match=r"too large: 5 bytes \(limit 4\)"):
        download("https://a.test/f", io.BytesIO(), limits=limits, transport=serve(declared, []))

    def stream() -> httpx.Response:
        return httpx.Response(200, content=iter([b"123", b"45"]))

    streamed = {"https://a.test/f": stream()}
    with pytest.raises(ContextError, match="too large: more than 4 bytes"):
        download("https://a.test/f", io.BytesIO(), limits=limits, transport=serve(streamed, []))


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, "authentication required"),
        (404, "invalid response status 404 Not Found"),
        (500, "status 500"),
    ],
)
def test_status_errors_name_the_url(status: int, message: str) -> None:
    routes = {"https://a.test/f": httpx.Response(status)}
    with pytest.raises(ContextError, match=message) as info:
        download("https://u:secret@a.test/f", io.BytesIO(), transport=serve(routes, []))
    assert str(info.value).startswith("https://u:xxxxx@a.test/f: ")


def test_environment_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYBUILD_MAX_DOWNLOAD", "123")
    monkeypatch.setenv("PYBUILD_DOWNLOAD_TIMEOUT", "5")
    limits = DownloadLimits.from_environment()
    assert (limits.max_bytes, limits.total_timeout, limits.read_timeout) == (123, 5.0, 5.0)
    monkeypatch.setenv("PYBUILD_MAX_DOWNLOAD", "lots")
    with pytest.raises(ContextError, match="PYBUILD_MAX_DOWNLOAD"):
        DownloadLimits.from_environment()
