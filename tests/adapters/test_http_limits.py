"""adapters.http.fetch_json against a tiny real loopback server: limits, content types, deadlines."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2
import pytest

from adapters.http import HttpError, fetch_json, make_client
from app.core.model import Practice

Route = Callable[[BaseHTTPRequestHandler, threading.Event], None]


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str = "application/fhir+json",
          headers: dict[str, str] | None = None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(body)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(body)


def _json(status: int, data: object, ctype: str = "application/fhir+json") -> Route:
    return lambda h, _stop: _send(h, status, json.dumps(data).encode(), ctype)


def _big_unsized(size: int) -> Route:
    """A large body with no Content-Length (sent until the connection closes)."""
    def route(h: BaseHTTPRequestHandler, stop: threading.Event) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Connection", "close")
        h.end_headers()
        chunk = b" " * 65536
        sent = 0
        try:
            h.wfile.write(b"[")
            while sent < size and not stop.is_set():
                h.wfile.write(chunk)
                sent += len(chunk)
            h.wfile.write(b"]")
        except OSError:
            pass  # the client hung up, as it should
        h.close_connection = True
    return route


def _gzip_bomb(h: BaseHTTPRequestHandler, _stop: threading.Event) -> None:
    body = gzip.compress(b"[" + b" " * (4 * 1024 * 1024) + b"]")
    _send(h, 200, body, "application/json", {"Content-Encoding": "gzip"})


def _trickle(h: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """Headers at once, then one byte every 50 ms: each read is quick, the whole never ends."""
    h.send_response(200)
    h.send_header("Content-Type", "application/fhir+json")
    h.send_header("Content-Length", "50000")
    h.end_headers()
    try:
        while not stop.wait(0.05):
            h.wfile.write(b" ")
            h.wfile.flush()
    except OSError:
        pass


def _silent(h: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    stop.wait(10)


def _redirect(location: Callable[[], str]) -> Route:
    def route(h: BaseHTTPRequestHandler, _stop: threading.Event) -> None:
        _send(h, 302, b"", "text/plain", {"Location": location()})
    return route


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client hanging up mid-reply is what several tests are about


class LoopbackServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.stop = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                outer.seen.append((self.path, dict(self.headers)))
                route = outer.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    _send(self, 404, b'{"resourceType":"OperationOutcome"}')
                else:
                    route(self, outer.stop)

            def log_message(self, *args: object) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        srv.routes.update({
            "/ok": _json(200, {"resourceType": "Bundle", "type": "searchset"}),
            "/plain-json": _json(200, {"resourceType": "Bundle"}, "application/json; charset=utf-8"),
            "/html": lambda h, _s: _send(h, 200, b"<html><body>Sign in</body></html>", "text/html"),
            "/xml": lambda h, _s: _send(h, 200, b"<Bundle/>", "application/fhir+xml"),
            "/malformed": lambda h, _s: _send(h, 200, b'{"resourceType": "Bundle", "entry": [', ),
            "/deep": lambda h, _s: _send(h, 200, b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
            "/lone-surrogate": lambda h, _s: _send(h, 200, b'{"resourceType": "Patient", "id": "\\ud800"}'),
            "/nan": lambda h, _s: _send(h, 200, b'{"resourceType": "Observation", "valueQuantity": {"value": NaN}}'),
            "/big-sized": lambda h, _s: _send(h, 200, b"[" + b" " * 200_000 + b"]"),
            "/big-unsized": _big_unsized(10 * 64 * 1024),
            "/gzip-bomb": _gzip_bomb,
            "/trickle": _trickle,
            "/silent": _silent,
            "/unauthorised": _json(401, {"resourceType": "OperationOutcome",
                                         "issue": [{"severity": "error", "diagnostics": "Bad credentials"}]}),
            "/forbidden": _json(403, {}),
            "/gone": _json(404, {"resourceType": "OperationOutcome"}),
            "/broken": _json(500, {"resourceType": "OperationOutcome",
                                   "issue": [{"severity": "fatal", "diagnostics": "NullPointerException " * 100}]}),
            "/unavailable": lambda h, _s: _send(h, 503, b"<html>maintenance</html>", "text/html"),
            "/same-origin": _redirect(lambda: "/ok"),
            "/other-origin": _redirect(lambda: f"http://localhost:{srv.server.server_address[1]}/ok"),
        })
        yield srv


def practice(base: str, *, timeout_s: float = 2.0, max_bytes: int = 64 * 1024) -> Practice:
    return Practice(id="test-practice", name="Test Surgery", ods_code="X00001", adapter="fhir-r4",
                    base_url=base, timeout_s=timeout_s, max_response_bytes=max_bytes)


async def fetch(p: Practice, path: str, **kwargs: object) -> object:
    async with make_client(p) as client:
        return await fetch_json(client, p, "GET", p.base_url + path, **kwargs)  # type: ignore[arg-type]


async def expect_error(p: Practice, path: str, kind: str) -> HttpError:
    with pytest.raises(HttpError) as info:
        await fetch(p, path)
    assert info.value.kind == kind, info.value.message
    assert info.value.message.startswith("Test Surgery"), info.value.message
    return info.value


async def test_fhir_and_plain_json_are_accepted_and_parsed(server: LoopbackServer) -> None:
    p = practice(server.base)
    reply = await fetch(p, "/ok", params={"_count": "5"})
    assert reply.status == 200 and reply.data == {"resourceType": "Bundle", "type": "searchset"}
    assert (await fetch(p, "/plain-json")).data == {"resourceType": "Bundle"}


async def test_every_request_carries_accept_user_agent_and_a_fresh_request_id(server: LoopbackServer) -> None:
    p = practice(server.base)
    await fetch(p, "/ok")
    await fetch(p, "/ok")
    (_, first), (_, second) = server.seen
    assert first["Accept"] == "application/fhir+json"
    assert first["User-Agent"].startswith("Mosaic/")
    assert first["X-Request-ID"] != second["X-Request-ID"]
    assert len(first["X-Request-ID"]) == 36


async def test_body_over_the_limit_with_content_length_is_refused(server: LoopbackServer) -> None:
    error = await expect_error(practice(server.base, max_bytes=20_000), "/big-sized", "too-large")
    assert "19.5 KB" in error.message


async def test_body_over_the_limit_without_content_length_is_abandoned_midstream(server: LoopbackServer) -> None:
    # 640 KB streamed against a 64 KB cap: ten times too big, and no Content-Length to warn us.
    error = await expect_error(practice(server.base, max_bytes=64 * 1024), "/big-unsized", "too-large")
    assert "more than 64 KB" in error.message


async def test_the_limit_applies_to_decompressed_bytes(server: LoopbackServer) -> None:
    await expect_error(practice(server.base, max_bytes=1024 * 1024), "/gzip-bomb", "too-large")


async def test_a_web_page_is_not_fhir(server: LoopbackServer) -> None:
    error = await expect_error(practice(server.base), "/html", "bad-reply")
    assert "a web page (text/html) instead of FHIR data" in error.message


async def test_xml_is_named_as_such(server: LoopbackServer) -> None:
    error = await expect_error(practice(server.base), "/xml", "bad-reply")
    assert "XML (application/fhir+xml)" in error.message


async def test_malformed_json_is_a_bad_reply(server: LoopbackServer) -> None:
    error = await expect_error(practice(server.base), "/malformed", "bad-reply")
    assert "not valid JSON" in error.message


@pytest.mark.parametrize(("path", "words"), [
    ("/deep", "nested too deeply"),  # no RecursionError traceback
    ("/lone-surrogate", "not valid JSON"),  # would fail later, writing the journal or drawing the text
    ("/nan", "not valid JSON"),  # not JSON (RFC 8259), whatever Python's json module accepts
])
async def test_json_that_is_not_strict_json_is_a_bad_reply(server: LoopbackServer, path: str, words: str) -> None:
    error = await expect_error(practice(server.base), path, "bad-reply")
    assert words in error.message


async def test_a_trickling_body_hits_the_overall_deadline(server: LoopbackServer) -> None:
    p = practice(server.base, timeout_s=0.3)  # each byte arrives well within 0.3 s; the whole never does
    started = time.monotonic()
    error = await expect_error(p, "/trickle", "timeout")
    elapsed = time.monotonic() - started
    assert "did not finish its reply within 0.6 s" in error.message
    assert 0.5 < elapsed < 10, elapsed  # not before the deadline; the whole body would take 40 minutes


async def test_a_server_that_never_answers_times_out(server: LoopbackServer) -> None:
    started = time.monotonic()
    error = await expect_error(practice(server.base, timeout_s=0.3), "/silent", "timeout")
    assert "did not answer within 0.3 s" in error.message
    assert time.monotonic() - started < 5  # the server stays silent for 10 s


async def test_statuses_map_to_kinds_with_the_servers_words(server: LoopbackServer) -> None:
    p = practice(server.base)
    error = await expect_error(p, "/unauthorised", "auth")
    assert error.status == 401 and "Bad credentials" in error.message
    assert (await expect_error(p, "/forbidden", "auth")).status == 403
    assert (await expect_error(p, "/gone", "not-found")).status == 404
    broken = await expect_error(p, "/broken", "server")
    assert "HTTP 500" in broken.message and "NullPointerException" in broken.message
    assert len(broken.message) < 600  # the diagnostics are shortened
    unavailable = await expect_error(p, "/unavailable", "server")
    assert "HTTP 503" in unavailable.message and "<html>" not in unavailable.message


async def test_auth_hint_is_added_to_auth_failures(server: LoopbackServer) -> None:
    p = practice(server.base)
    with pytest.raises(HttpError) as info:
        await fetch(p, "/unauthorised", auth_hint="Run `mosaic credentials set test-practice`.")
    assert info.value.message.endswith("Run `mosaic credentials set test-practice`.")


async def test_same_origin_redirects_are_followed_but_not_cross_origin(server: LoopbackServer) -> None:
    p = practice(server.base)
    assert (await fetch(p, "/same-origin")).data["resourceType"] == "Bundle"
    error = await expect_error(p, "/other-origin", "bad-reply")
    assert "did not follow it" in error.message
    assert [path for path, _ in server.seen].count("/ok") == 1  # the cross-origin target was never asked


async def test_unreachable_server_names_host_and_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        error = await expect_error(practice(f"http://127.0.0.1:{port}"), "/metadata", "network")
    assert f"could not be reached at 127.0.0.1:{port}" in error.message


async def test_log_lines_carry_path_and_ids_but_never_the_query(server: LoopbackServer,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    p = practice(server.base)
    with caplog.at_level(logging.DEBUG):
        await fetch(p, "/ok", params={"identifier": "https://fhir.nhs.uk/Id/nhs-number|9434765919",
                                      "family": "Smith"})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "practice=test-practice" in text and "/ok" in text and "status=200" in text
    assert "9434765919" not in text and "Smith" not in text and "nhs-number" not in text
    assert not [r for r in caplog.records if r.name.startswith("httpx2") and r.levelno >= logging.INFO]


async def test_client_verifies_tls() -> None:
    client = make_client(practice("https://example.invalid"))
    try:
        pool = client._transport._pool  # type: ignore[attr-defined]
        import ssl
        assert pool._ssl_context.verify_mode == ssl.CERT_REQUIRED
        assert client.follow_redirects is False
        assert client.timeout == httpx2.Timeout(2.0)
    finally:
        await client.aclose()
