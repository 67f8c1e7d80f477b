"""OAuth to remote servers, end to end: `mcpmux auth login` against a real SDK authorization server, then serve.

The fixture (tests/fixtures/oauth_server.py) is the SDK's own authorization server and a
bearer-protected MCP server in one subprocess on loopback. The test plays the person at the
browser (tests/oauth_helpers.py). Tokens land in the test's file keyring and nowhere else.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import host_session
from tests.e2e_helpers import ListChanged, audit_events
from tests.oauth_helpers import OAuthServer, auth_status, free_port, login, mcpmux, oauth_server

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]


def remote_toml(server: OAuthServer, oauth: str = "") -> str:
    return f'[servers.remote]\nurl = "{server.url}"\n' + (f"oauth = {oauth}\n" if oauth else "")


def text_of(result: Any) -> str:
    return result.content[0].model_dump()["text"]


def keyring_files(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "keyring").rglob("*") if p.is_file()]


async def test_a_server_behind_oauth_is_signed_in_once_then_relayed_with_its_token_kept_out_of_everything(
    write_profile: WriteProfile, mcpmux_home: Path
):
    async with oauth_server() as server:
        profile = write_profile(remote_toml(server))
        code, err = await login(profile)
        assert code == 0, err
        assert "signed in to server 'remote'" in err
        status = (await auth_status(profile))["remote"]
        async with host_session(profile) as host:
            who = await host.call_tool("remote__whoami", {})
            leaked = await host.call_tool("remote__bearer", {})
        stats = await server.stats()
    assert (status["state"], status["scopes"], status["client"]) == ("signed in", "mcp", "registered")
    assert status["expires_in_seconds"] > 3000
    assert (who.is_error, text_of(who).split()[1]) == (False, "mcp")
    assert text_of(leaked) == "token=[redacted:oauth-access.remote]"
    assert (stats["registrations"], stats["authorizations"], stats["code_exchanges"]) == (1, 1, 1)
    state = [p for p in (mcpmux_home / "state").rglob("*") if p.is_file()]
    for path in [*state, profile]:
        text = path.read_bytes()
        assert b"access_" not in text and b"refresh_" not in text, path


async def test_a_legacy_sse_server_behind_oauth_signs_in_and_is_relayed(write_profile: WriteProfile):
    async with oauth_server("--sse") as server:
        profile = write_profile(remote_toml(server))
        code, err = await login(profile)
        assert code == 0, err
        async with host_session(profile) as host:
            echoed = await host.call_tool("remote__echo", {"text": "over sse"})
    assert (echoed.is_error, text_of(echoed)) == (False, "over sse")


async def test_serve_refreshes_an_expired_token_silently_also_in_a_new_process(write_profile: WriteProfile):
    async with oauth_server("--expired-first") as server:
        profile = write_profile(remote_toml(server))
        code, err = await login(profile)
        assert code == 0, err
        await server.post("expire")  # the token the sign-in got is now refused: only a refresh gets through
        async with host_session(profile) as host:
            echoed = await host.call_tool("remote__echo", {"text": "after a refresh"})
            leaked = await host.call_tool("remote__bearer", {})
        stats = await server.stats()
        status = (await auth_status(profile))["remote"]
    assert (echoed.is_error, text_of(echoed)) == (False, "after a refresh")
    assert text_of(leaked) == "token=[redacted:oauth-access.remote]"  # the new token is redacted too
    assert (stats["refreshes"], stats["authorizations"]) == (1, 1)
    assert status["state"] == "signed in" and status["expires_in_seconds"] > 3000  # the refreshed token was kept


async def test_two_serves_on_one_sign_in_keep_working_when_each_refresh_spends_the_other_ones_refresh_token(
    write_profile: WriteProfile,
):
    async with oauth_server("--short-lived") as server:
        profile = write_profile(remote_toml(server))
        code, err = await login(profile)
        assert code == 0, err
        async with host_session(profile) as first:
            one = await first.call_tool("remote__echo", {"text": "first serve"})
            # The second refreshes with the refresh token the first one stored, so the first one's is spent
            # when it next refreshes. Each token is told to live 1 s: its expiry is the subject, so the test
            # lets that second pass rather than counting on a serve taking longer to start.
            await anyio.sleep(1.1)
            async with host_session(profile) as second:
                two = await second.call_tool("remote__echo", {"text": "second serve"})
            again = await first.call_tool("remote__echo", {"text": "first serve again"})
        stats = await server.stats()
    assert [text_of(r) for r in (one, two, again)] == ["first serve", "second serve", "first serve again"]
    # The second serve spent the refresh token the first one holds; the first then carries on with the
    # newer sign-in from the keyring (refreshing it once more if it too has expired by then).
    assert stats["authorizations"] == 1 and stats["refreshes"] >= 2


async def test_a_revoked_sign_in_fails_the_next_call_at_once_naming_the_login_command(
    write_profile: WriteProfile, mcpmux_home: Path
):
    async with oauth_server() as server:
        profile = write_profile(remote_toml(server))
        code, err = await login(profile)
        assert code == 0, err
        async with host_session(profile) as host:
            first = await host.call_tool("remote__echo", {"text": "signed in"})
            await server.post("revoke")
            with anyio.fail_after(20):  # nothing waits for a person: the call is answered
                refused = await host.call_tool("remote__echo", {"text": "revoked"})
                later = await host.call_tool("remote__echo", {"text": "still revoked"})
        stats = await server.stats()
    assert text_of(first) == "signed in"
    assert refused.is_error and "sign in with: mcpmux auth login remote" in text_of(refused)
    assert later.is_error and "mcpmux auth login remote" in text_of(later)
    assert (stats["registrations"], stats["authorizations"]) == (1, 1)  # serve never started a sign-in itself
    (failed,) = audit_events(mcpmux_home, "downstream_failed")
    assert failed["server"] == "remote" and "mcpmux auth login remote" in str(failed)


async def test_serve_without_a_sign_in_answers_calls_with_the_login_command_and_registers_nothing(
    write_profile: WriteProfile,
):
    async with oauth_server() as server:
        profile = write_profile(remote_toml(server))
        async with host_session(profile) as host:
            with anyio.fail_after(20):
                refused = await host.call_tool("remote__echo", {"text": "x"})
        stats = await server.stats()
        status = (await auth_status(profile))["remote"]
    assert refused.is_error
    assert "requires you to sign in (HTTP 401); sign in with: mcpmux auth login remote" in text_of(refused)
    assert (stats["registrations"], stats["authorizations"]) == (0, 0)
    assert status["state"] == "not signed in"


async def test_signing_in_while_serve_runs_starts_the_server_again_without_restarting_the_host(
    write_profile: WriteProfile,
):
    changes = ListChanged()
    async with oauth_server() as server:
        profile = write_profile(remote_toml(server))
        async with host_session(profile, message_handler=changes) as host:
            refused = await host.call_tool("remote__echo", {"text": "before"})
            changes.event = anyio.Event()  # from here on, a change is the server coming up
            code, err = await login(profile)
            assert code == 0, err
            await changes.wait()  # the server came up: its tools joined the catalog
            echoed = await host.call_tool("remote__echo", {"text": "after signing in"})
    assert refused.is_error
    assert "server 'remote' is starting again in 1 running serve(s)" in err
    assert (echoed.is_error, text_of(echoed)) == (False, "after signing in")


async def test_a_server_without_dynamic_registration_signs_in_with_the_profiles_own_client(
    write_profile: WriteProfile, tmp_path: Path
):
    port, client_id, client_secret = free_port(), f"client-{uuid.uuid4().hex[:8]}", f"cs-{uuid.uuid4().hex}"
    env = {
        "FIXTURE_CLIENT_ID": client_id,
        "FIXTURE_CLIENT_SECRET": client_secret,
        "FIXTURE_REDIRECT_URI": f"http://127.0.0.1:{port}/callback",
    }
    stored = await mcpmux("secret", "set", "remote-client", stdin=client_secret + "\n")
    assert stored.returncode == 0, stored.stderr
    async with oauth_server("--no-registration", env=env) as server:
        oauth = (
            f'{{ client_id = "{client_id}", client_secret = {{ secret = "remote-client" }}, callback_port = {port} }}'
        )
        profile = write_profile(remote_toml(server, oauth))
        code, err = await login(profile)
        assert code == 0, err
        async with host_session(profile) as host:
            who = await host.call_tool("remote__whoami", {})
        stats = await server.stats()
    assert text_of(who) == f"{client_id} mcp"
    assert (stats["registrations"], stats["code_exchanges"]) == (0, 1)
    for path in keyring_files(tmp_path):  # the secret is the profile's reference; the sign-in does not copy it
        assert path.read_text().count(client_secret) <= 1


async def test_serve_never_registers_a_client_when_a_refused_token_has_no_registration_behind_it(
    write_profile: WriteProfile,
):
    port, client_id = free_port(), f"client-{uuid.uuid4().hex[:8]}"
    env = {
        "FIXTURE_CLIENT_ID": client_id,
        "FIXTURE_CLIENT_SECRET": "unused",
        "FIXTURE_REDIRECT_URI": f"http://127.0.0.1:{port}/callback",
    }
    await mcpmux("secret", "set", "remote-client", stdin="unused\n")
    async with oauth_server(env=env) as server:
        oauth = (
            f'{{ client_id = "{client_id}", client_secret = {{ secret = "remote-client" }}, callback_port = {port} }}'
        )
        code, err = await login(write_profile(remote_toml(server, oauth)))
        assert code == 0, err
        await server.post("revoke")
        profile = write_profile(remote_toml(server))  # the profile's client is gone: dynamic registration from now on
        async with host_session(profile) as host:
            with anyio.fail_after(20):
                refused = await host.call_tool("remote__echo", {"text": "x"})
        stats = await server.stats()
    assert refused.is_error and "sign in with: mcpmux auth login remote" in text_of(refused)
    assert stats["registrations"] == 0


async def test_a_fixed_callback_port_that_is_taken_is_refused_naming_the_key(write_profile: WriteProfile):
    async with oauth_server() as server:
        with anyio.fail_after(10):
            listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        async with listener:
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            profile = write_profile(remote_toml(server, f"{{ callback_port = {port} }}"))
            code, err = await login(profile, consent=False)
    assert code == 1
    assert f"callback port {port} on 127.0.0.1 is in use" in err and "oauth.callback_port" in err


async def test_logout_forgets_the_sign_in(write_profile: WriteProfile):
    async with oauth_server() as server:
        profile = write_profile(remote_toml(server))
        code, err = await login(profile)
        assert code == 0, err
        done = await mcpmux("auth", "logout", "remote", "--profile", str(profile))
        again = await mcpmux("auth", "logout", "remote", "--profile", str(profile))
        status = (await auth_status(profile))["remote"]
    assert done.returncode == 0 and b"signed out of server 'remote'" in done.stderr
    assert again.returncode == 0 and b"nothing to forget" in again.stderr
    assert status["state"] == "not signed in"


async def test_a_refused_consent_ends_the_sign_in_with_the_servers_answer_and_stores_nothing(
    write_profile: WriteProfile,
):
    async with oauth_server("--deny") as server:
        profile = write_profile(remote_toml(server))
        code, err = await login(profile)
        status = (await auth_status(profile))["remote"]
    assert code == 1
    assert "the authorization server refused the sign-in: access_denied (no)" in err
    assert "Traceback" not in err
    assert status["state"] == "not signed in"
