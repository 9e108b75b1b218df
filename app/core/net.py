"""Every HTTP client Mosaic builds is made here, and none takes its route from the environment.

HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY (any case), REQUESTS_CA_BUNDLE, SSL_CERT_FILE and ~/.netrc
are the user's to set: honoured, they would carry practice traffic, credentials included, to whatever they
name. So every client ignores them (httpx `trust_env=False`; requests `Session.trust_env = False`). Proxies
are not supported yet: when they are, they will come from the machine-wide file, like every other route.

Nor does TLS take anything from the environment: every client verifies with Mosaic's own context (`tls_context`:
the OS's trust, hostname checked) and none writes TLS session keys where SSLKEYLOGFILE says. Python's
ssl.create_default_context and urllib3's (under requests) honour that variable; a key log would let anyone who
can read the file decrypt the traffic (patients' phone numbers to GOV.UK Notify, records from practices).
"""

from __future__ import annotations

import functools
import ssl
from typing import Any, Protocol

import httpx2


class _HasSession(Protocol):
    request_session: Any


@functools.cache
def tls_context() -> ssl.SSLContext:
    """Mosaic's one verifying TLS client context, made once (loading the CA bundle costs 20-30 ms each time, which
    on the shared event loop would delay every practice's sign-in by that much): the operating system's trust
    (httpx2's choice: the OS store on Windows and macOS, OpenSSL's compiled-in paths on Linux; never SSL_CERT_FILE
    or SSL_CERT_DIR), certificate and host name required, and no key log whatever SSLKEYLOGFILE says (the context
    is made directly, not by ssl.create_default_context, which would open that file)."""
    context = httpx2.create_ssl_context(verify=True, trust_env=False)
    _refuse_key_log(context)
    return context


def _refuse_key_log(context: ssl.SSLContext) -> None:
    if getattr(context, "keylog_filename", None):
        raise ValueError("Mosaic's TLS contexts never write a key log (SSLKEYLOGFILE)")


def async_client(**options: Any) -> httpx2.AsyncClient:
    """An httpx2.AsyncClient that ignores the environment (proxies, CA bundle, netrc, key log); `options` as
    httpx's. TLS is verified: with `tls_context()` unless `verify` gives another context (which may not log keys)."""
    if options.pop("trust_env", False):
        raise ValueError("Mosaic's HTTP clients never take proxies or certificates from the environment")
    if "proxy" in options or "mounts" in options:
        raise ValueError("proxies are not supported yet (they would come from the machine-wide file)")
    verify = options.pop("verify", None)
    if verify is None:
        verify = tls_context()
    elif not isinstance(verify, ssl.SSLContext):
        raise ValueError("Mosaic's HTTP clients always verify TLS with an SSLContext (net.tls_context())")
    _refuse_key_log(verify)
    return httpx2.AsyncClient(trust_env=False, verify=verify, **options)


@functools.cache
def _verified_adapter_class() -> type[Any]:
    """requests is imported only when a requests-based client is made (GOV.UK Notify's), not at every start."""
    from requests.adapters import HTTPAdapter

    class VerifiedAdapter(HTTPAdapter):
        """requests' transport with Mosaic's TLS context on every connection: verified against the OS's trust (not
        certifi's bundle, not REQUESTS_CA_BUNDLE), and no key log (urllib3's own context would honour SSLKEYLOGFILE).
        A request's `verify` cannot weaken it; proxies are refused."""

        def __init__(self, context: ssl.SSLContext | None = None) -> None:
            self._context = context or tls_context()
            _refuse_key_log(self._context)
            super().__init__()

        def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
            super().init_poolmanager(connections, maxsize, block=block, ssl_context=self._context, **pool_kwargs)

        def build_connection_pool_key_attributes(self, request: Any, verify: Any,
                                                 cert: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
            host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, True, cert)
            pool_kwargs.pop("ca_certs", None)
            pool_kwargs.pop("ca_cert_dir", None)
            pool_kwargs.update(ssl_context=self._context, cert_reqs="CERT_REQUIRED")
            return host_params, pool_kwargs

        def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
            conn.cert_reqs = "CERT_REQUIRED"  # whatever `verify` says; the context's trust alone, no CA bundle file
            conn.ca_certs = None
            conn.ca_cert_dir = None

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            raise ValueError("proxies are not supported yet (they would come from the machine-wide file)")

    return VerifiedAdapter


def verified_adapter(context: ssl.SSLContext | None = None) -> Any:
    """A requests transport adapter that verifies with Mosaic's TLS context (`tls_context()` unless given)."""
    return _verified_adapter_class()(context)


def without_environment(client: _HasSession) -> None:
    """Make a requests-based client (GOV.UK Notify's) ignore the environment: no proxies, CA bundle or netrc, and
    every connection through `VerifiedAdapter` (Mosaic's TLS context: OS trust, no key log)."""
    session = client.request_session
    session.trust_env = False
    session.proxies.clear()
    session.verify = True
    adapter = verified_adapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
