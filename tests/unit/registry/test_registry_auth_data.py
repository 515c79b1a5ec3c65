"""Challenge parsing, scopes, token responses and the token cache (pure data)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.errors import AuthenticationError
from builder.registry.auth import (
    Challenge,
    Credentials,
    Token,
    TokenCache,
    TokenKey,
    merge_scopes,
    parse_challenges,
    parse_token_response,
    pick_challenge,
    repository_scope,
)


def test_docker_hub_style_bearer_challenge() -> None:
    (ch,) = parse_challenges(
        [
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
            'scope="repository:library/busybox:pull"'
        ]
    )
    assert ch.scheme == "bearer"
    assert ch.realm == "https://auth.docker.io/token"
    assert ch.service == "registry.docker.io"
    assert ch.scopes == ("repository:library/busybox:pull",)


def test_challenges_tolerate_spacing_case_escapes_and_several_schemes() -> None:
    found = parse_challenges(
        [
            'Basic realm="Registry \\"Realm\\""',
            ' BEARER  Realm = "https://a/t" , scope="repository:x:pull repository:y:push",'
            ' error="insufficient_scope", Negotiate abc==',
        ]
    )
    assert [c.scheme for c in found] == ["basic", "bearer", "negotiate"]
    assert found[0].realm == 'Registry "Realm"'
    assert found[1].realm == "https://a/t"
    assert found[1].scopes == ("repository:x:pull", "repository:y:push")
    assert found[1].param("ERROR") == "insufficient_scope"
    assert pick_challenge(found) == found[1]
    assert pick_challenge(found[:1]) == found[0]
    assert pick_challenge((Challenge(scheme="negotiate"),)) is None


def test_garbage_challenges_give_nothing_or_partial_results() -> None:
    assert parse_challenges(["", "   ", ",,,", '"', "="]) == ()
    (ch,) = parse_challenges(['Bearer realm="unterminated'])
    assert ch.realm == "unterminated"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=200), max_size=3))
def test_challenge_parsing_never_crashes(headers: list[str]) -> None:
    for ch in parse_challenges(headers):
        assert ch.scheme == ch.scheme.lower()
        assert all(k == k.lower() for k, _ in ch.params)


def test_scopes() -> None:
    assert repository_scope("team/app") == "repository:team/app:pull"
    assert repository_scope("team/app", push=True) == "repository:team/app:pull,push"
    assert merge_scopes(
        ["repository:a:pull"], ["repository:a:push", "repository:b:pull", "registry:catalog:*"]
    ) == ("registry:catalog:*", "repository:a:pull,push", "repository:b:pull")
    assert merge_scopes(["repository:a:pull,push"], ["repository:a:pull"]) == (
        "repository:a:pull,push",
    )


def test_token_responses() -> None:
    token = parse_token_response(b'{"token": "abc", "expires_in": 300}', realm="r")
    assert (token.value, token.expires_in) == ("abc", 300.0)
    short = parse_token_response(b'{"access_token": "xyz", "expires_in": 5}', realm="r")
    assert (short.value, short.expires_in) == ("xyz", 60.0)  # the spec's minimum
    assert parse_token_response(b'{"token": "t"}', realm="r").expires_in == 60.0
    for bad in (b"not json", b"[]", b'{"token": ""}', b'{"token": 5}'):
        with pytest.raises(AuthenticationError, match="token server r"):
            parse_token_response(bad, realm="r")


def test_token_cache_expires_before_the_token_does() -> None:
    now = [1000.0]
    cache = TokenCache(clock=lambda: now[0])
    key = TokenKey(realm="r", service="s", scopes=("repository:a:pull",), identity="")
    other = TokenKey(realm="r", service="s", scopes=("repository:a:pull",), identity="bob")
    assert cache.get(key) is None
    cache.put(key, Token(value="T", expires_in=60.0))
    assert cache.get(key) == "T"
    assert cache.get(other) is None  # tokens are per identity
    now[0] += 54.0
    assert cache.get(key) == "T"
    now[0] += 1.5
    assert cache.get(key) is None
    cache.put(key, Token(value="U", expires_in=60.0))
    cache.drop(key)
    assert cache.get(key) is None


def test_credentials_never_show_secrets() -> None:
    creds = Credentials(username="bob", password="hunter2", identity_token="tok-123")
    assert "hunter2" not in repr(creds)
    assert "tok-123" not in repr(creds)
    assert creds.basic_header() == "Basic Ym9iOmh1bnRlcjI="
    assert Credentials().empty
    assert not creds.empty
