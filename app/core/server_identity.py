"""A practice's server identity: what rules attach to, rather than the local id a directory file gives it.

    identity = normalised base URL + ODS code

The URL is normalised so that spellings of one server compare equal: scheme and host lower-cased, a
trailing dot on the host dropped, IPv4 in any form inet_aton accepts (`127.1`, `2130706433`, `0x7f.0.0.1`)
and IPv6 (`[::ffff:127.0.0.1]`) written canonically, every loopback name (`localhost`, `127.0.0.0/8`, `::1`)
as one, the default port dropped, the path with `.`/`..` segments resolved, repeated and trailing slashes
dropped, unreserved %-escapes decoded and letters lower-cased (Windows servers ignore case), user info,
query and fragment dropped.

Used by the practice directory (a per-user practice may not alias a machine practice's server, which would
escape that practice's restrictions; `same_server`) and by the audit outbox (an entry goes only to the
server it was committed for; `identity_of`).
"""

from __future__ import annotations

import functools
import ipaddress
import posixpath
import re
import socket
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from app.core.model import Practice

_DEFAULT_PORTS = {"http": 80, "https": 443}
#: adapters whose server serves several practices at one URL and tells them apart by the ODS code it is sent
#: (GP Connect's Ssp-To). For every other adapter the ODS code is only a label the server never sees.
ODS_ROUTED_ADAPTERS = frozenset({"gp-connect"})
_UNRESERVED_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_NUMERIC_HOST = re.compile(r"[0-9a-fx.]+", re.IGNORECASE)
LOOPBACK = "loopback"


@dataclass(frozen=True, order=True)
class ServerIdentity:
    url: str  # normalised base URL
    ods: str  # ODS code, upper-case

    def __str__(self) -> str:
        return f"{self.url} {self.ods}"

    @classmethod
    def parse(cls, text: str) -> ServerIdentity:
        url, _, ods = text.strip().rpartition(" ")
        if not url or not ods:
            raise ValueError(f"not a server identity: {text!r}")
        return cls(url, ods)


def identity_of(practice: Practice) -> ServerIdentity:
    return ServerIdentity(normalise_url(practice.base_url), practice.ods_code.strip().upper())


def same_server(a: Practice, b: Practice) -> bool:
    """Whether two directory entries reach the same practice data: the same normalised base URL, and the same
    ODS code where the server routes by it (both GP Connect); for any other adapter the URL alone decides."""
    if normalise_url(a.base_url) != normalise_url(b.base_url):
        return False
    if a.adapter in ODS_ROUTED_ADAPTERS and b.adapter in ODS_ROUTED_ADAPTERS:
        return a.ods_code.strip().upper() == b.ods_code.strip().upper()
    return True


@functools.lru_cache(maxsize=1024)  # a pure function of the text; the outbox asks it per practice per delivery
def normalise_url(url: str) -> str:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = _host(parts.hostname or "")
    try:
        port = parts.port
    except ValueError:
        port = None
    port_text = "" if port is None or port == _DEFAULT_PORTS.get(scheme) else f":{port}"
    path = _UNRESERVED_ESCAPE.sub(_unescape_unreserved, parts.path)
    path = re.sub(r"/+", "/", path)
    path = posixpath.normpath(path) if path else ""
    path = "" if path in (".", "/", "//") else path.rstrip("/")
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    return f"{scheme}://{host}{port_text}{path.lower()}"


def _unescape_unreserved(match: re.Match[str]) -> str:
    char = unquote(match.group(0))
    return char if re.fullmatch(r"[A-Za-z0-9\-._~]", char) else match.group(0).upper()


def _host(host: str) -> str:
    host = host.strip().rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return LOOPBACK
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if _NUMERIC_HOST.fullmatch(host) and any(c.isdigit() for c in host):
            try:  # the legacy forms the C resolver accepts, so httpx would reach them too
                address = ipaddress.IPv4Address(socket.inet_aton(host))
            except OSError:
                address = None
    if address is None:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback or address.is_unspecified:  # 0.0.0.0 and :: reach this machine too
        return LOOPBACK
    return f"[{address.compressed}]" if address.version == 6 else address.compressed
