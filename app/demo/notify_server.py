"""A local stand-in for GOV.UK Notify's REST API, enough for the official Python client.

Speaks `POST /v2/notifications/sms`, `POST /v2/notifications/email` and `GET /v2/notifications`
(filtered by `reference`), with Notify's JWT bearer authentication: an API key is
"<name>-<service id>-<secret>", and the client signs an HS256 JWT with `iss` = service id and `iat`
= now, which is checked here with the secret (and `iat` within 30 s, as Notify does).

Everything received is kept in `received` for tests. `down` answers 503 to every request (an
outage); `fail_next(n)` answers 503 to the next n sends. Nothing here is real patient data.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

IAT_LEEWAY_S = 30
SMS_FROM = "GOVUK"


@dataclass
class NotifyTemplate:
    id: str
    body: str  # with ((placeholders)), as in Notify
    subject: str | None = None  # email templates only
    version: int = 1


@dataclass
class DemoNotify:
    """The demo Notify service. `start()`, use `base_url` and `api_key`, `stop()`."""

    templates: dict[str, NotifyTemplate] = field(default_factory=dict)
    service_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    secret: str = field(default_factory=lambda: str(uuid.uuid4()))
    key_name: str = "mosaic_demo"
    down: bool = False
    received: list[dict[str, Any]] = field(default_factory=list)
    sms_template: str | None = None  # the ids of the templates the demo configures (start_demo_notify)
    email_template: str | None = None
    _failures_left: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: _Server | None = None
    _thread: threading.Thread | None = None

    @property
    def api_key(self) -> str:
        return f"{self.key_name}-{self.service_id}-{self.secret}"

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_port}"

    def add_template(self, body: str, subject: str | None = None) -> str:
        template = NotifyTemplate(str(uuid.uuid4()), body, subject)
        self.templates[template.id] = template
        return template.id

    def fail_next(self, count: int) -> None:
        with self._lock:
            self._failures_left = count

    def start(self) -> DemoNotify:
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="demo-notify", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> DemoNotify:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- request handling (called on the server's threads) -----------------------------------------------

    def authorise(self, header: str | None) -> str | None:
        """None when the bearer token is good; else Notify's error message."""
        if not header or not header.startswith("Bearer "):
            return "Unauthorized: authentication token must be provided"
        token = header.removeprefix("Bearer ").strip()
        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256"], options={"verify_iat": False})
        except jwt.InvalidTokenError:
            return "Invalid token: signature, api token not found"
        if claims.get("iss") != self.service_id:
            return "Invalid token: service not found"
        iat = claims.get("iat")
        if not isinstance(iat, int | float) or abs(time.time() - iat) > IAT_LEEWAY_S:
            return "Error: Your system clock must be accurate to within 30 seconds"
        return None

    def send(self, kind: str, body: dict[str, Any], host: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if self._failures_left > 0:
                self._failures_left -= 1
                return 503, _errors(503, "RequestError", "Service temporarily unavailable")
        address_key = "phone_number" if kind == "sms" else "email_address"
        missing = [k for k in (address_key, "template_id") if not body.get(k)]
        if missing:
            return 400, _errors(400, "ValidationError", f"{missing[0]} is a required property")
        template = self.templates.get(str(body["template_id"]))
        if template is None:
            return 400, _errors(400, "BadRequestError", "Template not found")
        personalisation = body.get("personalisation") or {}
        try:
            content = _fill(template.body, personalisation)
            subject = _fill(template.subject or "", personalisation)
        except KeyError as exc:
            return 400, _errors(400, "BadRequestError", f"Missing personalisation: {exc.args[0]}")
        notification_id = str(uuid.uuid4())
        base = f"http://{host}"
        response: dict[str, Any] = {
            "id": notification_id,
            "reference": body.get("reference"),
            "content": {"body": content, "from_number": SMS_FROM} if kind == "sms"
            else {"body": content, "subject": subject, "from_email": "mosaic.demo@notifications.service.gov.uk"},
            "uri": f"{base}/v2/notifications/{notification_id}",
            "template": {"id": template.id, "version": template.version,
                         "uri": f"{base}/services/{self.service_id}/templates/{template.id}"},
            "scheduled_for": None,
        }
        with self._lock:
            self.received.append({"type": kind, "to": body[address_key], "request": body, "response": response})
        return 201, response

    def list(self, reference: str | None) -> dict[str, Any]:
        with self._lock:
            items = [r for r in self.received if reference is None or r["request"].get("reference") == reference]
        notifications = [{"id": r["response"]["id"], "reference": r["request"].get("reference"), "type": r["type"],
                          "status": "delivered", "template": r["response"]["template"],
                          "body": r["response"]["content"]["body"]} for r in items]
        return {"notifications": notifications, "links": {"current": "/v2/notifications"}}


def _fill(text: str, personalisation: dict[str, Any]) -> str:
    out, rest = [], text
    while "((" in rest:
        before, _, after = rest.partition("((")
        name, _, rest = after.partition("))")
        out.append(before)
        if name not in personalisation:
            raise KeyError(name)
        value = personalisation[name]
        out.append("\n".join(f"* {v}" for v in value) if isinstance(value, list) else str(value))
    out.append(rest)
    return "".join(out)


def _errors(status: int, error: str, message: str) -> dict[str, Any]:
    return {"status_code": status, "errors": [{"error": error, "message": message}]}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, app: DemoNotify) -> None:
        self.app = app
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        TCPServer.server_bind(self)  # no reverse DNS lookup
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _gate(self) -> bool:
        app = self.server.app
        if app.down:
            self._reply(503, _errors(503, "RequestError", "Service temporarily unavailable"))
            return False
        problem = app.authorise(self.headers.get("Authorization"))
        if problem is not None:
            self._reply(403, _errors(403, "AuthError", problem))
            return False
        return True

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self._gate():
            return
        path = urlsplit(self.path).path
        kinds = {"/v2/notifications/sms": "sms", "/v2/notifications/email": "email"}
        if path not in kinds:
            self._reply(404, _errors(404, "NoResultFound", "Not found"))
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._reply(400, _errors(400, "BadRequestError", "Invalid JSON supplied in POST data"))
            return
        status, reply = self.server.app.send(kinds[path], body, self.headers.get("Host") or "127.0.0.1")
        self._reply(status, reply)

    def do_GET(self) -> None:  # noqa: N802
        if not self._gate():
            return
        url = urlsplit(self.path)
        if url.path != "/v2/notifications":
            self._reply(404, _errors(404, "NoResultFound", "Not found"))
            return
        reference = next(iter(parse_qs(url.query).get("reference", [])), None)
        self._reply(200, self.server.app.list(reference))


DEMO_SMS_TEMPLATE = ("((practice)): on ((date)) your GP record was looked at ((count)) time(s) by staff outside "
                     "your practice:\n((accesses))\nIf you did not expect this, contact your practice.")
DEMO_EMAIL_TEMPLATE = ("Dear patient,\n\nOn ((date)) your GP record at ((practice)) was looked at by:\n\n"
                       "((accesses))\n\nThis is part of your care. If you did not expect it, please contact your "
                       "practice.")


def start_demo_notify() -> DemoNotify:
    """The demo's Notify endpoint, running, with the SMS and email templates `mosaic demo` configures
    (`sms_template` and `email_template` hold their ids)."""
    server = DemoNotify()
    server.sms_template = server.add_template(DEMO_SMS_TEMPLATE)
    server.email_template = server.add_template(DEMO_EMAIL_TEMPLATE,
                                                subject="Who looked at your GP record")
    return server.start()
