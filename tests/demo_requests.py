"""What a demo practice was asked, request by request, so a test counts only the requests it causes.

A signed-in core also talks to its practices on its own: the audit outbox delivers AuditEvents, and the
sessions check every online practice now and then (GET /metadata and, for a practice on basic or bearer
auth, a `_summary=count` probe). A test that counted every request at the server would fail whenever one
of those landed mid-test (`assert 31 == 30`). `RequestLog.asked()` leaves them out; `about()` keeps only
the requests that name a patient.

Use it through the `demo_requests` fixture (tests/conftest.py), which puts every server back afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass(frozen=True)
class SeenRequest:
    practice_id: str
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    body: str

    @property
    def background(self) -> bool:
        """Made by the core on its own, not by what the test did: an AuditEvent delivery, a token, a health check."""
        path = self.path.rstrip("/")
        return ("/AuditEvent" in path or "/oauth/" in path or path.endswith("/metadata")
                or ("_summary", "count") in self.query)

    def mentions(self, needle: str) -> bool:
        return any(needle in text for text in (self.path, self.body, *(v for _, v in self.query)))

    def __str__(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.query)
        return f"{self.practice_id}: {self.method} {self.path}{'?' + query if query else ''}"


class RequestLog:
    """Every request the practices' APIs dispatch from now on (requests a fault drops are not seen)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: list[SeenRequest] = []

    def watch(self, server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        api = server.api
        dispatch: Callable[[Any], Any] = api.dispatch
        practice_id = server.spec.id

        def recording(request: Any) -> Any:
            seen = SeenRequest(practice_id, request.method, request.path, tuple(request.query),
                               request.body.decode("utf-8", "replace"))
            with self._lock:
                self._seen.append(seen)
            return dispatch(request)

        monkeypatch.setattr(api, "dispatch", recording)

    @property
    def seen(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._seen)

    def asked(self) -> list[str]:
        """The requests the test caused: everything but the core's own background traffic."""
        return [str(r) for r in self.seen if not r.background]

    def about(self, *needles: str) -> list[str]:
        """The requests (not AuditEvent deliveries) that name any of `needles`: a local id, an NHS number."""
        return [str(r) for r in self.seen
                if "/AuditEvent" not in r.path and any(r.mentions(n) for n in needles if n)]
