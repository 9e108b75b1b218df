"""A demo practice as a real HTTP server on 127.0.0.1 (ephemeral port), one thread per connection.

The server applies latency and faults, then hands the request to `FhirApi`. `stop()` returns
promptly even while requests hang: it wakes the accept loop, shuts every open connection and tells
waiting handlers to give up.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from app import __version__
from app.core.model import Practice
from app.demo.audit_store import AuditStore
from app.demo.auth import Authenticator, authenticator_for
from app.demo.faults import Decision, Faults, oversized_body
from app.demo.fhir_api import FhirApi, Request
from app.demo.fhir_json import FHIR_JSON, Reply, outcome
from app.demo.gpconnect_api import PREFIX as GPC_PREFIX
from app.demo.gpconnect_api import GpConnectApi, spine_outcome
from app.demo.population import Population, hash_seed
from app.demo.practices import PracticeSpec

log = logging.getLogger("mosaic.demo.server")

MAX_REQUEST_BODY = 10 * 1024 * 1024
_LOGIN_PAGE = (b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><h1>Sign in to continue"
               b"</h1><form method=\"post\"><input name=\"username\"><input name=\"password\" "
               b"type=\"password\"><button>Sign in</button></form></body></html>")


#: Mosaic's own ASID and the users' organisation, as a demo network's [gp_connect] table names them
DEMO_CONSUMER_ASID = "918999100001"
DEMO_CONSUMER_ODS = "Y90001"

class DemoServer:
    """One demo practice: its population behind a FHIR R4 API, with its own credentials and faults.

    With `asid` set, the practice speaks GP Connect Access Record: Structured (STU3) instead, at
    {url}/gpconnect/fhir, and its FHIR R4 API is off; `gpconnect` is then its GpConnectApi.
    """

    def __init__(self, spec: PracticeSpec, population: Population, secret: str, *, seed: int = 0,
                 supports_everything: bool | None = None, asid: str | None = None) -> None:
        self.spec = spec
        self.asid = asid
        self.population = population
        self.secret = secret
        self.faults = Faults(seed=hash_seed(seed, spec.id))
        self.auth: Authenticator = authenticator_for(spec, secret)
        self.audit = AuditStore()
        self._httpd = _HttpServer(self)
        self.port: int = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        everything = spec.supports_everything if supports_everything is None else supports_everything
        self.api: FhirApi | GpConnectApi
        self.gpconnect: GpConnectApi | None = None
        if asid is not None:
            self.api = self.gpconnect = GpConnectApi(population, self.base_url, asid)
        else:
            self.api = FhirApi(population, self.auth, self.audit, self.base_url, everything, seed=seed)
        self.requests = 0  # requests received, for tests and benchmarks
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread: threading.Thread | None = None
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stopped = False

    # -- public -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"{self.url}{GPC_PREFIX}" if self.asid is not None else f"{self.url}/fhir"

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth/token"

    @property
    def practice(self) -> Practice:
        spec = self.spec
        if self.asid is not None:
            return Practice(id=spec.id, name=spec.name, ods_code=spec.ods_code, adapter="gp-connect",
                            base_url=self.base_url, auth="none", colour=spec.colour, asid=self.asid,
                            consumer_asid=DEMO_CONSUMER_ASID, consumer_ods=DEMO_CONSUMER_ODS)
        return Practice(
            id=spec.id, name=spec.name, ods_code=spec.ods_code, adapter="fhir-r4", base_url=self.base_url,
            auth=spec.auth, username=spec.username, client_id=spec.client_id, colour=spec.colour,
            token_url=self.token_url if spec.auth == "client-credentials" else None,
        )

    def start(self) -> DemoServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=f"demo-{self.spec.id}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop accepting, drop open connections and wake held requests. Safe to call twice."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            connections = dict(self._connections)
        deadline = time.monotonic() + timeout
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        for conn in connections:
            _shutdown(conn)
        self._httpd.server_close()
        for thread in connections.values():
            thread.join(max(0.0, deadline - time.monotonic()))
        self._wake_r.close()
        self._wake_w.close()

    # -- serving ------------------------------------------------------------------------------

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._httpd.socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._httpd.socket and not self._stopping.is_set():
                        self._httpd.handle_request()

    def track(self, conn: socket.socket, opened: bool) -> bool:
        """Remember open connections so stop() can drop them; False when already stopping."""
        with self._lock:
            if not opened:
                self._connections.pop(conn, None)
                return True
            if self._stopped:
                return False
            self._connections[conn] = threading.current_thread()
            return True

    def handle(self, h: _Handler) -> None:
        started = time.monotonic()
        with self._lock:
            self.requests += 1
        request_id = h.headers.get("x-request-id") or uuid.uuid4().hex[:12]
        split = urlsplit(h.path)
        path = unquote(split.path)
        body = _read_body(h)
        if body is None:
            self._send(h, outcome(400, "invalid", "The request body could not be read."), request_id)
            return
        decision = self.faults.decide(path)
        if decision.delay_s and self._stopping.wait(decision.delay_s):
            _drop(h)
            return
        # an HTTPMessage: a mapping with case-insensitive keys, though not registered as a Mapping
        headers = cast(Mapping[str, str], h.headers)
        status = self._respond(h, decision, Request(h.command, path, parse_qsl(split.query, True), headers, body),
                               request_id)
        # never the query string: it carries NHS numbers and names
        log.debug("practice=%s request=%s %s %s status=%s ms=%.1f fault=%s", self.spec.id, request_id,
                  h.command, path, status, (time.monotonic() - started) * 1000, decision.action)

    def _respond(self, h: _Handler, decision: Decision, request: Request, request_id: str) -> int | str:
        action = decision.action
        if action == "down":
            _drop(h)
            return "dropped"
        if action == "hang":
            with self.faults.holding():
                self._stopping.wait(decision.settings.hang_s)
            _drop(h)
            return "hung"
        if action == "oversized":
            self._send_oversized(h, decision, request_id)
            return 200
        if action == "wrong-content-type":
            reply = Reply(200, _LOGIN_PAGE, "text/html; charset=utf-8")
        elif action in ("http-500", "auth-fail") and self.gpconnect is not None:
            reply = spine_outcome("INTERNAL_SERVER_ERROR" if action == "http-500" else "ACCESS_DENIED",
                                  "The practice system had an internal error (demo fault)." if action == "http-500"
                                  else "Access was refused (demo fault).")
        elif action == "http-500":
            reply = outcome(500, "exception", "The practice system had an internal error (demo fault).")
        elif action == "http-503":
            reply = outcome(503, "transient", "The practice system is busy; try again shortly (demo fault).",
                            {"Retry-After": "1"})
        elif action == "auth-fail":
            reply = outcome(401, "login", "The credentials were refused (demo fault).",
                            {"WWW-Authenticate": self.auth.challenge()})
        else:
            try:
                reply = self.api.dispatch(request)
            except Exception as exc:  # a bug here must not kill the connection thread silently
                log.error("practice=%s request=%s %s failed: %s", self.spec.id, request_id, request.path,
                          type(exc).__name__)
                reply = outcome(500, "exception", "The demo server failed to answer this request.")
            if action == "malformed-json":
                reply.body = _truncated(reply.body)
        self._send(h, reply, request_id)
        return reply.status

    def _send(self, h: _Handler, reply: Reply, request_id: str) -> None:
        try:
            h.send_response(reply.status)
            h.send_header("Content-Type", reply.content_type)
            h.send_header("Content-Length", str(len(reply.body)))
            h.send_header("X-Request-ID", request_id)
            for name, value in reply.headers.items():
                h.send_header(name, value)
            if h.close_connection:
                h.send_header("Connection", "close")
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(reply.body)
        except OSError:
            h.close_connection = True

    def _send_oversized(self, h: _Handler, decision: Decision, request_id: str) -> None:
        settings = decision.settings
        chunked = settings.oversize_chunked
        try:
            h.send_response(200)
            h.send_header("Content-Type", FHIR_JSON)
            h.send_header("X-Request-ID", request_id)
            h.send_header("Connection", "close")  # whatever happens, this connection ends here
            if chunked:
                h.send_header("Transfer-Encoding", "chunked")
            else:
                h.send_header("Content-Length", str(settings.oversize_bytes))
            h.end_headers()
            for piece in oversized_body(settings.oversize_bytes):
                if self._stopping.is_set():
                    break
                h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            else:
                if chunked:
                    h.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client gave up reading, as it should
        h.close_connection = True


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() drops connections itself; never wait for a hanging handler
    request_queue_size = 128
    timeout = 0  # handle_request() is only called when a connection is waiting

    def __init__(self, app: DemoServer) -> None:
        self.app = app
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        TCPServer.server_bind(self)  # HTTPServer's version does a reverse DNS lookup; not needed here
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"MosaicDemo/{__version__}"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this
    disable_nagle_algorithm = True  # headers and body go out as separate writes; don't wait on ACKs
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        if not self.server.app.track(self.connection, True):
            self.close_connection = True
            _shutdown(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.app.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Silenced: request lines carry NHS numbers in their query strings."""

    def do_GET(self) -> None:  # noqa: N802 - the base class's naming
        self.server.app.handle(self)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET  # noqa: N815


def _read_body(h: BaseHTTPRequestHandler) -> bytes | None:
    if h.headers.get("transfer-encoding"):
        h.close_connection = True
        return None
    length = h.headers.get("content-length")
    if not length:
        return b""
    if not length.isdigit() or int(length) > MAX_REQUEST_BODY:
        h.close_connection = True
        return None
    return h.rfile.read(int(length))


def _truncated(body: bytes) -> bytes:
    """Cut a JSON body short so it no longer parses (a proper prefix of an object never does)."""
    return body[: max(1, len(body) * 2 // 3)] if body else b'{"resourceType": "Bund'


def _drop(h: BaseHTTPRequestHandler) -> None:
    h.close_connection = True
    _shutdown(h.connection)


def _shutdown(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
