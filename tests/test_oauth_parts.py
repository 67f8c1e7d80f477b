"""The parts of OAuth sign-in mcpmux adds to the SDK: the keyring token storage and the loopback callback."""

from __future__ import annotations

import time

import anyio
import httpx2
import pytest
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from mcpmux.oauth import callback
from mcpmux.oauth.callback import SignInFailed
from mcpmux.oauth.storage import KeyringTokenStorage, entry_name
from mcpmux.secrets.store import KeyringStore

pytestmark = pytest.mark.anyio

URL = "https://mcp.example/mcp"


async def test_tokens_keep_their_absolute_expiry_and_registration_across_processes():
    first = KeyringTokenStorage(KeyringStore(), "remote", URL)
    await first.set_client_info(OAuthClientInformationFull(client_id="dyn-1", redirect_uris=None))
    await first.set_tokens(OAuthToken(access_token="access-1", expires_in=100, refresh_token="refresh-1"))
    later = KeyringTokenStorage(KeyringStore(), "remote", URL)
    assert await later.load()
    assert later.tokens is not None and later.tokens.refresh_token == "refresh-1"
    assert (await later.get_client_info() or OAuthClientInformationFull(client_id="-")).client_id == "dyn-1"
    assert later.expires_at is not None and 90 < later.expires_at - time.time() <= 100


async def test_a_server_moved_to_another_url_is_never_handed_the_old_urls_tokens():
    await KeyringTokenStorage(KeyringStore(), "remote", URL).set_tokens(OAuthToken(access_token="for-the-old-url"))
    moved = KeyringTokenStorage(KeyringStore(), "remote", "https://elsewhere.example/mcp")
    assert not await moved.load()
    assert await moved.get_tokens() is None
    assert entry_name("remote", URL) != moved.name


async def test_the_profiles_own_client_is_used_and_never_stored_in_place_of_a_registration():
    own = OAuthClientInformationFull(client_id="profile-client", client_secret="cs-value")
    storage = KeyringTokenStorage(KeyringStore(), "remote", URL, preregistered=own)
    await storage.set_client_info(OAuthClientInformationFull(client_id="registered-by-someone"))
    await storage.set_tokens(OAuthToken(access_token="access-1"))
    assert await storage.get_client_info() == own
    raw = await KeyringStore().get(storage.name)
    assert raw is not None and "cs-value" not in raw and "registered-by-someone" not in raw


async def test_an_unreadable_entry_counts_as_not_signed_in():
    await KeyringStore().set(entry_name("remote", URL), "{not json")
    storage = KeyringTokenStorage(KeyringStore(), "remote", URL)
    assert not await storage.load()
    assert not storage.signed_in


async def get(url: str) -> httpx2.Response:
    async with httpx2.AsyncClient() as client:
        return await client.get(url)


async def test_the_callback_ignores_requests_without_the_sign_ins_state_and_takes_the_right_one():
    async with callback.serve(await callback.bind(0)) as cb:
        cb.expect = callback.state_of("https://as.example/authorize?client_id=c&state=s-123")
        base = f"http://127.0.0.1:{cb.port}"
        forged = await get(f"{base}/callback?code=evil&state=guessed")
        elsewhere = await get(f"{base}/favicon.ico")
        assert not cb.done.is_set()
        good = await get(f"{base}/callback?code=c-1&state=s-123&iss=https%3A%2F%2Fas.example%2F")
        with anyio.fail_after(5):
            result = await cb.wait(5)
    assert (forged.status_code, elsewhere.status_code, good.status_code) == (400, 404, 200)
    assert (result.code, result.state, result.iss) == ("c-1", "s-123", "https://as.example/")


async def test_an_error_redirect_ends_the_wait_with_the_servers_reason():
    async with callback.serve(await callback.bind(0)) as cb:
        cb.expect = "s-9"
        page = await get(
            f"http://127.0.0.1:{cb.port}/callback?error=access_denied&error_description=<b>no</b>&state=s-9"
        )
        with pytest.raises(SignInFailed, match=r"access_denied \(<b>no</b>\)"):
            await cb.wait(5)
    assert "&lt;b&gt;" in page.text  # the server's words are shown as text, never as markup


async def test_no_answer_from_the_browser_ends_the_wait_with_a_clear_error():
    async with callback.serve(await callback.bind(0)) as cb:
        with pytest.raises(SignInFailed, match=r"no answer from the browser within 0\.1 s"):
            await cb.wait(0.1)
