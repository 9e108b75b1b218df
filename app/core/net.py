"""Every HTTP client Mosaic builds is made here, and none takes its route from the environment.

HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY (any case), REQUESTS_CA_BUNDLE, SSL_CERT_FILE and ~/.netrc
are the user's to set: honoured, they would carry practice traffic, credentials included, to whatever they
name. So every client ignores them (httpx `trust_env=False`; requests `Session.trust_env = False`). Proxies
are not supported yet: when they are, they will come from the machine-wide file, like every other route.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx2


class _HasSession(Protocol):
    request_session: Any


def async_client(**options: Any) -> httpx2.AsyncClient:
    """An httpx2.AsyncClient that ignores the environment (proxies, CA bundle, netrc); `options` as httpx's."""
    if options.pop("trust_env", False):
        raise ValueError("Mosaic's HTTP clients never take proxies or certificates from the environment")
    if "proxy" in options or "mounts" in options:
        raise ValueError("proxies are not supported yet (they would come from the machine-wide file)")
    return httpx2.AsyncClient(trust_env=False, **options)


def without_environment(client: _HasSession) -> None:
    """Make a requests-based client (GOV.UK Notify's) ignore the environment: no proxies, CA bundle or netrc."""
    session = client.request_session
    session.trust_env = False
    session.proxies.clear()
