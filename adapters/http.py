"""Bounded HTTP for adapters: every request has a size cap, a content-type check and a deadline.

`fetch_json` is the one way an adapter talks to a practice. It streams the body and stops past
`practice.max_response_bytes`, refuses replies that are not JSON, turns every failure into an
`HttpError` (an `AdapterError`) whose message names the practice and says what to do next, and
logs one DEBUG line per request: practice id, request id, method, path (never the query string; resource
ids masked, as a practice-local patient id identifies someone to anyone with the practice system),
status and timing. Bodies, query strings and headers are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
import orjson

import app
from adapters.base import AdapterError
from app.core import logs, net
from app.core.model import Practice
from app.core.text import clean_text

log = logging.getLogger("mosaic.adapters.http")

logs.quiet_http_loggers()  # also where Mosaic's logging was never set up (a library user, a test)

JSON_TYPES: tuple[str, ...] = ("application/fhir+json", "application/json", "application/json+fhir")
USER_AGENT = f"Mosaic/{app.__version__}"
#: the whole request, body included, must finish within timeout_s times this
DEADLINE_FACTOR = 2.0
MAX_REDIRECTS = 3
_ERROR_BODY_LIMIT = 64 * 1024
_DETAIL_LIMIT = 300
_REDIRECTS = {301, 302, 303, 307, 308}


class HttpError(AdapterError):
    """An AdapterError that remembers the HTTP status, when there was one (for retry decisions)."""

    def __init__(self, message: str, kind: str, status: int | None = None, detail: str = "") -> None:
        super().__init__(message, kind)
        self.status = status
        self.detail = detail  # the server's own explanation, when it gave one
        self.spine_code: str | None = None  # GP Connect: the Spine error code the reply carried, if one


@dataclass(frozen=True)
class JsonReply:
    status: int
    data: Any
    url: httpx2.URL
    request_id: str
    elapsed_ms: float


def make_client(practice: Practice, accept: str = "application/fhir+json") -> httpx2.AsyncClient:
    """One client per adapter: TLS verified, per-phase timeouts from the practice, no auto-redirects."""
    t = practice.timeout_s
    return net.async_client(  # no proxies, CA bundle or netrc from the environment
        verify=net.tls_context(),  # the OS trust store, never the environment's
        follow_redirects=False,  # fetch_json follows same-origin redirects itself
        timeout=httpx2.Timeout(connect=t, read=t, write=t, pool=t),
        headers={"Accept": accept, "User-Agent": USER_AGENT},
    )


async def close_client(client: httpx2.AsyncClient | None, loop: asyncio.AbstractEventLoop | None) -> None:
    """Close an adapter's client, but only from the loop it was made on (httpx clients are loop-bound);
    from anywhere else it is simply dropped."""
    if client is None or client.is_closed:
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        return
    if running is loop:
        await client.aclose()


def origin_of(url: str | httpx2.URL) -> tuple[str, str, int | None]:
    u = httpx2.URL(str(url))
    default = {"http": 80, "https": 443}.get(u.scheme)
    return (u.scheme, u.host.lower(), u.port or default)


def human_size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.3g} MB"
    if n >= 1024:
        return f"{n / 1024:.3g} KB"
    return f"{n} bytes"


class _Trace:
    """One request's id, timing and outcome, for the single DEBUG line each request logs."""

    def __init__(self) -> None:
        self.request_id = str(uuid.uuid4())
        self.started = time.perf_counter()
        self.status: int | str = "-"

    @property
    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000


@contextlib.contextmanager
def _plain_errors(practice: Practice, method: str, target: httpx2.URL, deadline: float, next_step: str,
                  logger: logging.Logger) -> Iterator[_Trace]:
    """Turn every transport failure into an HttpError a user can read, and log the request once."""
    trace = _Trace()
    try:
        yield trace
    except HttpError:
        raise
    except httpx2.TimeoutException as exc:
        trace.status = type(exc).__name__
        raise HttpError(f"{practice.name} did not answer within {practice.timeout_s:g} s. The practice's "
                        f"server may be down or overloaded; {next_step}", "timeout") from exc
    except TimeoutError as exc:  # our overall deadline: a reply trickling in too slowly
        trace.status = "deadline"
        raise HttpError(f"{practice.name} did not finish its reply within {deadline:g} s (it was sending "
                        f"very slowly). {next_step[0].upper()}{next_step[1:]}", "timeout") from exc
    except httpx2.ConnectError as exc:
        trace.status = "connect-error"
        raise _connect_error(practice, target, exc) from exc
    except (httpx2.NetworkError, httpx2.RemoteProtocolError) as exc:
        trace.status = type(exc).__name__
        raise HttpError(f"{practice.name} closed the connection before its reply was complete. "
                        f"{next_step[0].upper()}{next_step[1:]}", "network") from exc
    except httpx2.DecodingError as exc:
        trace.status = "decoding-error"
        raise HttpError(f"{practice.name} sent a reply that could not be decoded (bad compression). "
                        "Tell the practice.", "bad-reply") from exc
    except (httpx2.UnsupportedProtocol, httpx2.InvalidURL) as exc:
        trace.status = "bad-url"
        raise HttpError(f"{practice.name}: the address {_safe_url(target)} cannot be used ({exc}). "
                        f"Check base_url in {practice.source or 'the practice directory'}.", "config") from exc
    finally:
        logger.debug("practice=%s request=%s %s %s status=%s ms=%.0f", practice.id, trace.request_id, method,
                     _log_path(target.path), trace.status, trace.elapsed_ms)


_RESOURCE_ID = re.compile(r"/([A-Z][A-Za-z]+)/(?!\$)[^/]+")


def _log_path(path: str) -> str:
    """'/fhir/Patient/31d0375e349a/$everything' -> '/fhir/Patient/*/$everything'."""
    return _RESOURCE_ID.sub(r"/\1/*", path)


async def fetch_json(
    client: httpx2.AsyncClient,
    practice: Practice,
    method: str,
    url: str | httpx2.URL,
    *,
    params: Mapping[str, str] | None = None,
    data: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    accept_types: tuple[str, ...] = JSON_TYPES,
    auth_hint: str = "",
    logger: logging.Logger | None = None,
    decode: Callable[[bytes], Any] | None = None,
) -> JsonReply:
    """Send one request and return its parsed JSON body, or raise HttpError with a readable reason.

    `decode`, when given, is tried on the body first (a typed decoder, e.g. an appointment-book page's); when it
    returns None the body is parsed as plain JSON, as without it.

    Redirects are followed only for GET and only within the same origin (scheme, host, port):
    credentials must never travel to a server the practice directory did not name.
    `auth_hint` is appended to 401/403 messages (e.g. how to set the password).
    """
    deadline = practice.timeout_s * DEADLINE_FACTOR
    target = httpx2.URL(str(url))
    if params:
        target = target.copy_merge_params(dict(params))
    with _plain_errors(practice, method, target, deadline, "try again shortly.", logger or log) as trace:
        async with asyncio.timeout(deadline):
            for _hop in range(MAX_REDIRECTS + 1):
                request_headers = {**(headers or {}), "X-Request-ID": trace.request_id}
                async with client.stream(method, target, data=data, headers=request_headers) as resp:
                    trace.status = resp.status_code
                    if resp.status_code in _REDIRECTS:
                        target = _redirect_target(practice, method, target, resp)
                        continue
                    if resp.status_code >= 400:
                        detail = _error_detail(await _read_capped(resp, _ERROR_BODY_LIMIT, practice, strict=False))
                        raise _status_error(practice, resp.status_code, detail, auth_hint)
                    _check_content_type(practice, resp, accept_types)
                    body = await _read_capped(resp, practice.max_response_bytes, practice, strict=True)
                    data = decode(body) if decode is not None else None
                    return JsonReply(resp.status_code, data if data is not None else _parse(practice, body),
                                     resp.url, trace.request_id, trace.elapsed_ms)
            raise HttpError(f"{practice.name} redirected Mosaic more than {MAX_REDIRECTS} times. "
                            "Check the base URL in the practice directory.", "bad-reply", status=None)


async def send_json(
    client: httpx2.AsyncClient,
    practice: Practice,
    method: str,
    url: str | httpx2.URL,
    body: Any,
    *,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/fhir+json",
    auth_hint: str = "",
    logger: logging.Logger | None = None,
) -> int:
    """Send `body` as JSON and return the 2xx status; the reply body is read (capped) and ignored.

    The sibling of `fetch_json` for writes: the same deadline and error messages, but no redirects
    (a write must reach the server the practice directory names) and no need for a parseable reply,
    since the status alone says whether the server took the write.
    """
    deadline = practice.timeout_s * DEADLINE_FACTOR
    target = httpx2.URL(str(url))
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    with _plain_errors(practice, method, target, deadline, "Mosaic will try again.", logger or log) as trace:
        async with asyncio.timeout(deadline):
            request_headers = {**(headers or {}), "Content-Type": content_type, "X-Request-ID": trace.request_id}
            async with client.stream(method, target, content=content, headers=request_headers) as resp:
                trace.status = status = resp.status_code
                reply = await _read_capped(resp, _ERROR_BODY_LIMIT, practice, strict=False)
                if status >= 400:
                    raise _status_error(practice, status, _error_detail(reply), auth_hint)
                if not 200 <= status < 300:
                    raise HttpError(f"{practice.name} answered HTTP {status} instead of accepting the data. "
                                    "Check the base URL with the practice.", "bad-reply", status)
                return status


def _safe_url(url: httpx2.URL) -> str:
    """An address fit for a message: scheme, host, port and path; never the query string."""
    return str(url.copy_with(query=None, fragment=None))


def _redirect_target(practice: Practice, method: str, current: httpx2.URL, resp: httpx2.Response) -> httpx2.URL:
    location = resp.headers.get("Location")
    if not location:
        raise HttpError(f"{practice.name} sent a redirect without a destination. Tell the practice.",
                        "bad-reply", resp.status_code)
    target = current.join(location)
    if method != "GET" or origin_of(target) != origin_of(current):
        raise HttpError(f"{practice.name} redirected Mosaic to {target.scheme}://{target.host}, which is "
                        "not the address in the practice directory; Mosaic did not follow it. Check the "
                        "base URL with the practice.", "bad-reply", resp.status_code)
    return target


async def _read_capped(resp: httpx2.Response, limit: int, practice: Practice, *, strict: bool) -> bytes:
    """Read at most `limit` decoded bytes; past it raise "too-large" (strict) or return what fits."""
    declared = resp.headers.get("Content-Length", "")
    if strict and declared.isdigit() and int(declared) > limit:
        raise _too_large(practice, limit, resp.status_code)
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        size += len(chunk)
        if size > limit:
            if strict:
                raise _too_large(practice, limit, resp.status_code)
            chunks.append(chunk[: limit - (size - len(chunk))])
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(practice: Practice, limit: int, status: int) -> HttpError:
    return HttpError(f"{practice.name} sent more than {human_size(limit)}, Mosaic's limit for one reply "
                     "from this practice, so the reply was abandoned. If such large replies are expected, "
                     "ask IT to raise max_response_mb for this practice.", "too-large", status)


def _check_content_type(practice: Practice, resp: httpx2.Response, accepted: tuple[str, ...]) -> None:
    raw = resp.headers.get("Content-Type", "")
    mime = raw.split(";", 1)[0].strip().lower()
    if mime in accepted:
        return
    if mime in ("text/html", "application/xhtml+xml"):
        what = f"a web page ({mime})"
    elif mime in ("application/fhir+xml", "application/xml", "text/xml", "application/xml+fhir"):
        what = f"XML ({mime})"
    elif mime:
        what = f"'{mime}' data"
    else:
        what = "a reply with no content type"
    raise HttpError(f"{practice.name} sent {what} instead of FHIR data. The base URL may point at a "
                    "login page or proxy rather than the FHIR server; check it with the practice.",
                    "bad-reply", resp.status_code)


def _parse(practice: Practice, body: bytes) -> Any:
    """The reply as JSON, by orjson: strict RFC 8259 (no NaN, no lone surrogates, which could not be written to
    the journal or shown), and half the CPU of json.loads on the core's loop (0.16 against 0.30 ms for a
    25-patient search page; issue 9)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit"):  # nesting deeper than any FHIR resource: refused, named
            raise HttpError(f"{practice.name} sent data nested too deeply to read. The server is faulty; tell "
                            "the practice.", "bad-reply") from exc
        raise HttpError(f"{practice.name} sent data that is not valid JSON (line {exc.lineno}, column "
                        f"{exc.colno}). The reply may have been cut off or the server is faulty; try again, and "
                        "tell the practice if it persists.", "bad-reply") from exc


def _error_detail(body: bytes) -> str:
    """The server's own words, from an OperationOutcome or an OAuth error body, shortened, without control or
    bidi characters (app/core/text.py: they would reach the terminal, a widget and the journal raw)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return ""
    if not isinstance(data, dict):
        return ""
    parts: list[str] = []
    if data.get("resourceType") == "OperationOutcome":
        for issue in data.get("issue") or []:
            if not isinstance(issue, dict):
                continue
            details = issue.get("details")
            text = issue.get("diagnostics") or (details.get("text") if isinstance(details, dict) else None)
            if isinstance(text, str) and clean_text(text).strip():
                parts.append(clean_text(text).strip())
    else:
        for key in ("error", "error_description"):
            if isinstance(data.get(key), str) and clean_text(data[key]).strip():
                parts.append(clean_text(data[key]).strip())
    detail = "; ".join(parts)
    return detail if len(detail) <= _DETAIL_LIMIT else detail[: _DETAIL_LIMIT - 1] + "…"


def _status_error(practice: Practice, status: int, detail: str, auth_hint: str) -> HttpError:
    error = _status_message(practice, status, detail, auth_hint)
    error.detail = detail
    return error


def _status_message(practice: Practice, status: int, detail: str, auth_hint: str) -> HttpError:
    said = f" The server said: {detail}" if detail else ""
    said = said if said.endswith((".", "…")) or not said else said + "."
    hint = f" {auth_hint}" if auth_hint else ""
    if status == 401:
        return HttpError(f"{practice.name} did not accept Mosaic's sign-in (HTTP 401).{said}{hint}",
                         "auth", status)
    if status == 403:
        return HttpError(f"{practice.name} refused access (HTTP 403): this account may not be allowed to "
                         f"do this.{said}{hint}", "auth", status)
    if status in (404, 410):
        return HttpError(f"{practice.name} has no such record (HTTP {status}).{said}", "not-found", status)
    if status == 429:
        return HttpError(f"{practice.name} is busy and asked Mosaic to slow down (HTTP 429). Try again in "
                         "a minute.", "server", status)
    if status >= 500:
        return HttpError(f"{practice.name}'s server failed (HTTP {status}).{said} Try again later; tell the "
                         "practice if it persists.", "server", status)
    return HttpError(f"{practice.name} rejected Mosaic's request (HTTP {status}).{said} Tell your IT "
                     "support: the server may not support this kind of request.", "server", status)


def _connect_error(practice: Practice, url: httpx2.URL, exc: httpx2.ConnectError) -> HttpError:
    scheme, host, port = origin_of(url)
    where = f"{host}:{port}" if port else host
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return HttpError(f"{practice.name} at {where} presented a security certificate that could not be "
                         "verified, so Mosaic did not connect. Tell your IT support.", "network")
    return HttpError(f"{practice.name} could not be reached at {where}. Check your network connection; "
                     "if others can reach it, the practice's server may be down.", "network")
