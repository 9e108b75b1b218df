"""One sign-in: OpenID Connect authorization code + PKCE (S256) with a loopback redirect (RFC 8252),
end to end against the demo provider over real loopback HTTP. The browser is an HTTP client that
follows the provider's redirect by hand."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import jwt
import pytest

from app.core.config import ConfigError, IdentitySettings, load_identity_settings
from app.core.identity import Identity, IdentityError, SignedInUser
from app.core.oidc import LoopbackRedirect, OidcError, discover, validate_id_token
from app.demo.oidc_provider import DemoOidcProvider


@pytest.fixture
def provider() -> Iterator[DemoOidcProvider]:
    with DemoOidcProvider.start() as p:
        yield p


class Browser:
    """The injected `open_url`: remembers the authorize URL for the test to follow."""

    def __init__(self) -> None:
        self.opened: asyncio.Queue[str] = asyncio.Queue()

    def __call__(self, url: str) -> None:
        self.opened.put_nowait(url)

    async def follow(self, *, state: str | None = None) -> httpx2.Response:
        """GET the authorize URL (no automatic redirects), then deliver its redirect to the loopback."""
        url = await asyncio.wait_for(self.opened.get(), 5)
        async with httpx2.AsyncClient(follow_redirects=False, trust_env=False) as client:
            answer = await client.get(url)
            assert answer.status_code == 302, answer.text
            location = answer.headers["location"]
            if state is not None:  # a forged callback: right code, wrong state
                parts = urlsplit(location)
                params = {k: v[0] for k, v in parse_qs(parts.query).items()} | {"state": state}
                location = f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(params)}"
            return await client.get(location)


async def _sign_in(identity: Identity, browser: Browser) -> tuple[SignedInUser, httpx2.Response]:
    task = asyncio.ensure_future(identity.sign_in())
    landing = await browser.follow()
    return await asyncio.wait_for(task, 10), landing


async def test_full_flow_signs_in_the_demo_clinician(provider: DemoOidcProvider) -> None:
    browser = Browser()
    identity = Identity(provider.settings, open_url=browser)
    user, landing = await _sign_in(identity, browser)

    assert landing.status_code == 200 and "close this window" in landing.text
    assert (user.login, user.display_name, user.role) == ("clinician1", "Dr Asha Patel", "GP")
    assert (user.sds_user_id, user.sds_role_profile_id, user.org_ods) == ("555021935107", "555021936103", "Y91001")
    assert (user.given_name, user.family_name) == ("Asha", "Patel")
    audit = user.audit_user()
    assert audit.login == "clinician1" and audit.display_name == "Dr Asha Patel" and audit.role == "GP"
    assert audit.professional_ids == {"sds_user_id": "555021935107", "sds_role_profile_id": "555021936103",
                                      "org_ods": "Y91001"}
    assert identity.signed_in and user.tokens is not None and user.tokens.access_token
    assert user.tokens.access_token not in repr(user) and user.tokens.id_token not in repr(user)

    identity.sign_out()
    assert identity.user is None and not identity.signed_in


async def test_authorize_request_carries_pkce_s256_state_nonce_and_loopback_redirect(
        provider: DemoOidcProvider) -> None:
    browser = Browser()
    identity = Identity(provider.settings, open_url=browser, redirect_timeout_s=2)
    task = asyncio.ensure_future(identity.sign_in())
    url = await asyncio.wait_for(browser.opened.get(), 5)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(f"{provider.issuer}/authorize?")
    assert query["response_type"] == "code" and query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43 and "code_verifier" not in query
    assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32 and query["state"] != query["nonce"]
    redirect = urlsplit(query["redirect_uri"])
    assert redirect.scheme == "http" and redirect.hostname == "127.0.0.1" and redirect.port and \
        redirect.path == "/callback"
    with pytest.raises(IdentityError, match="not completed in the browser"):
        await task  # nobody followed it: times out, and the listener is gone
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(query["redirect_uri"], trust_env=False)


async def test_wrong_state_is_refused_and_the_real_callback_still_works(provider: DemoOidcProvider) -> None:
    browser = Browser()
    identity = Identity(provider.settings, open_url=browser, redirect_timeout_s=5)
    task = asyncio.ensure_future(identity.sign_in())
    url = await asyncio.wait_for(browser.opened.get(), 5)
    async with httpx2.AsyncClient(follow_redirects=False, trust_env=False) as client:
        location = (await client.get(url)).headers["location"]
        parts = urlsplit(location)
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        forged = f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(params | {'state': 'forged'})}"
        refused = await client.get(forged)
        assert refused.status_code == 400 and "did not come from" in refused.text
        # The listener decided before it answered: the forged callback neither signed in nor ended the attempt,
        # so the genuine one, after it, is still taken and signs in.
        assert not task.done()
        assert (await client.get(location)).status_code == 200
    user = await asyncio.wait_for(task, 10)
    assert user.login == "clinician1"


async def test_only_a_forged_callback_never_signs_in(provider: DemoOidcProvider) -> None:
    browser = Browser()
    identity = Identity(provider.settings, open_url=browser, redirect_timeout_s=1)
    task = asyncio.ensure_future(identity.sign_in())
    assert (await browser.follow(state="forged")).status_code == 400
    with pytest.raises(IdentityError, match="not completed"):
        await task
    assert identity.user is None


async def test_loopback_listener_accepts_only_matching_state_on_callback() -> None:
    async with LoopbackRedirect("the-state") as redirect, \
            httpx2.AsyncClient(trust_env=False) as client:
        base = f"http://127.0.0.1:{redirect.port}"
        assert (await client.get(f"{base}/favicon.ico")).status_code == 404
        assert (await client.get(f"{base}/callback?code=x&state=wrong")).status_code == 400
        assert (await client.get(f"{base}/callback?code=x")).status_code == 400
        assert (await client.post(f"{base}/callback?code=x&state=the-state")).status_code == 405
        ok = await client.get(f"{base}/callback?code=abc&state=the-state")
        assert ok.status_code == 200 and "You can close this window" in ok.text
        assert await redirect.wait(1) == {"code": "abc", "state": "the-state"}
        assert redirect.rejected == 3


async def test_tampered_id_token_is_rejected(provider: DemoOidcProvider) -> None:
    provider.tamper_id_token = True
    browser = Browser()
    identity = Identity(provider.settings, open_url=browser)
    with pytest.raises(IdentityError, match="signature"):
        await _sign_in(identity, browser)
    assert identity.user is None


async def test_expired_id_token_is_rejected(provider: DemoOidcProvider) -> None:
    provider.id_token_overrides = {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}
    browser = Browser()
    identity = Identity(provider.settings, open_url=browser)
    with pytest.raises(IdentityError, match="expired"):
        await _sign_in(identity, browser)


async def test_wrong_nonce_is_rejected(provider: DemoOidcProvider) -> None:
    provider.id_token_overrides = {"nonce": "a-nonce-from-another-sign-in"}
    browser = Browser()
    identity = Identity(provider.settings, open_url=browser)
    with pytest.raises(IdentityError, match="nonce"):
        await _sign_in(identity, browser)


async def test_id_token_for_another_client_or_issuer_is_rejected(provider: DemoOidcProvider) -> None:
    async with httpx2.AsyncClient(trust_env=False) as client:
        meta = await discover(client, provider.issuer)
        keys = jwt.PyJWKSet.from_dict((await client.get(meta.jwks_uri)).json())
    good = provider.mint_id_token("n1")
    assert validate_id_token(good, keys, issuer=provider.issuer, client_id=provider.client_id, nonce="n1")["sub"]
    with pytest.raises(OidcError, match="another application"):
        validate_id_token(provider.mint_id_token("n1", aud="someone-else"), keys, issuer=provider.issuer,
                          client_id=provider.client_id, nonce="n1")
    with pytest.raises(OidcError, match="another sign-in service"):
        validate_id_token(provider.mint_id_token("n1", iss="https://evil.example"), keys, issuer=provider.issuer,
                          client_id=provider.client_id, nonce="n1")
    with pytest.raises(OidcError, match="nonce"):
        validate_id_token(provider.mint_id_token(None), keys, issuer=provider.issuer,
                          client_id=provider.client_id, nonce="n1")
    unsigned = jwt.encode({"iss": provider.issuer, "sub": "x", "aud": provider.client_id, "nonce": "n1",
                           "iat": int(time.time()), "exp": int(time.time()) + 60}, None, algorithm="none")
    with pytest.raises(OidcError, match="does not accept"):
        validate_id_token(unsigned, keys, issuer=provider.issuer, client_id=provider.client_id, nonce="n1")


async def test_provider_rejects_a_wrong_pkce_verifier_and_a_reused_code(provider: DemoOidcProvider) -> None:
    async with httpx2.AsyncClient(follow_redirects=False, trust_env=False) as client:
        redirect_uri = "http://127.0.0.1:1/callback"
        from app.core.oidc import Pkce

        pkce = Pkce.generate()
        answer = await client.get(f"{provider.issuer}/authorize", params={
            "response_type": "code", "client_id": provider.client_id, "redirect_uri": redirect_uri,
            "scope": "openid", "state": "s", "nonce": "n", "code_challenge": pkce.challenge,
            "code_challenge_method": "S256"})
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "client_id": provider.client_id, "code_verifier": Pkce.generate().verifier}
        wrong = await client.post(f"{provider.issuer}/token", data=form)
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
        assert "PKCE" in provider.token_errors[-1]
        again = await client.post(f"{provider.issuer}/token", data=form | {"code_verifier": pkce.verifier})
        assert again.status_code == 400  # the code was spent by the failed attempt

        plain = await client.get(f"{provider.issuer}/authorize", params={
            "response_type": "code", "client_id": provider.client_id, "redirect_uri": redirect_uri,
            "scope": "openid", "state": "s", "code_challenge": "abc", "code_challenge_method": "plain"})
        assert parse_qs(urlsplit(plain.headers["location"]).query)["error"] == ["invalid_request"]


async def test_provider_error_in_redirect_ends_sign_in_with_a_message(provider: DemoOidcProvider) -> None:
    settings = IdentitySettings(issuer=provider.issuer, client_id=provider.client_id, scopes=("profile",))
    browser = Browser()
    identity = Identity(settings, open_url=browser)
    with pytest.raises(IdentityError, match="invalid_scope"):
        await _sign_in(identity, browser)


async def test_discovery_with_another_issuer_is_refused(provider: DemoOidcProvider) -> None:
    settings = IdentitySettings(issuer=provider.issuer.replace("127.0.0.1", "localhost"),
                                client_id=provider.client_id)
    identity = Identity(settings, open_url=lambda url: None)
    with pytest.raises(IdentityError, match="different issuer"):
        await identity.sign_in()


def test_nothing_secret_is_logged(provider: DemoOidcProvider, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    for name in ("httpx2", "httpcore2", "mosaic"):  # other tests may have quietened them
        caplog.set_level("DEBUG", logger=name)
    browser = Browser()

    async def run() -> SignedInUser:
        identity = Identity(provider.settings, open_url=browser)
        return (await _sign_in(identity, browser))[0]

    user = asyncio.run(run())
    assert user.tokens is not None
    for secret in (user.tokens.access_token, user.tokens.id_token):
        assert secret not in caplog.text
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("mosaic"))
    assert "signed in login=clinician1" in ours
    assert "code=" not in ours and "verifier" not in ours and "state=" not in ours
    # the test's own "browser" (httpx2) logs the callback URL; Mosaic's client never requests one with a code
    mosaic_requests = [r.getMessage() for r in caplog.records if r.name == "httpx2" and "/callback" not in
                       r.getMessage() and "/authorize" not in r.getMessage()]
    assert mosaic_requests and not any("code=" in m for m in mosaic_requests)


# --- configuration ------------------------------------------------------------------------------------


def test_identity_settings_from_the_machine_file_only(tmp_path, monkeypatch, mosaic_home, machine_dir) -> None:
    machine_dir.mkdir()
    machine = machine_dir / "practices.toml"
    machine.write_text('[identity]\nissuer = "https://am.nhsidentity.spineservices.nhs.uk/openam/oauth2/realms/'
                       'root/realms/NHSIdentity/realms/Healthcare"\nclient_id = "mosaic"\n'
                       'scopes = "openid profile nationalrbacaccess"\nidle_lock_minutes = 5\n', encoding="utf-8")
    settings = load_identity_settings()
    assert settings.configured and settings.client_id == "mosaic" and settings.idle_lock_minutes == 5
    assert settings.scopes == ("openid", "profile", "nationalrbacaccess")

    (mosaic_home / "practices.toml").write_text('[identity]\nissuer = "https://evil.example"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="machine-wide"):
        load_identity_settings()


def test_identity_settings_defaults_and_errors(tmp_path, machine_dir) -> None:
    assert load_identity_settings() == IdentitySettings()
    assert IdentitySettings().idle_lock_minutes == 10
    machine_dir.mkdir()
    bad = machine_dir / "practices.toml"
    for text, key in (('[identity]\nissuer = "http://idp.example"\nclient_id = "x"\n', "issuer"),
                      ('[identity]\nissuer = "https://idp.example"\n', "client_id"),
                      ('[identity]\nissuer = "https://i.example"\nclient_id = "x"\nscopes = "profile"\n', "scopes"),
                      ('[identity]\nidle_lock_minutes = 0\n', "idle_lock_minutes"),
                      ('[identity]\nsecret = "x"\n', "secret")):
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match=f"key '{key}'"):
            load_identity_settings()
