"""A hostile FHIR R4 practice on 127.0.0.1 for the insight review's tests: it serves whatever Bundles the test
hands it (a far-future Bundle time, a year-9999 appointment, a slot ending before it starts, a local type carrying
an NHS number), through the real FhirR4Adapter, HTTP and all. Searches are answered by resource type only: the
test decides what each type's search returns."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from app.core.model import Practice

BOOK = ("Schedule", "Slot", "Appointment", "Encounter", "Patient")


@dataclass
class Script:
    """What the server answers: resources per type, the Bundles' meta.lastUpdated, and every path asked."""

    resources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    bundle_time: str = "2026-03-31T12:00:00+00:00"
    asked: list[str] = field(default_factory=list)


def bundle(script: Script, rtype: str, query: str = "") -> dict[str, Any]:
    """The type's resources; with `_lastUpdated=gtT`, only those updated after T (as a server would)."""
    if rtype == "Patient":
        return {"resourceType": "Bundle", "type": "searchset", "total": 2000}
    after = next((datetime.fromisoformat(v[2:]) for k, v in parse_qsl(query) if k == "_lastUpdated"), None)
    entries = [{"resource": r, "search": {"mode": "match"}} for r in script.resources.get(rtype, [])
               if after is None or datetime.fromisoformat(r["meta"]["lastUpdated"]) > after]
    return {"resourceType": "Bundle", "type": "searchset", "meta": {"lastUpdated": script.bundle_time},
            "total": len(entries), "entry": entries}


def capability() -> dict[str, Any]:
    return {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance", "fhirVersion": "4.0.1",
            "format": ["json"], "rest": [{"mode": "server", "resource": [
                {"type": t, "interaction": [{"code": "search-type"}, {"code": "read"}]} for t in BOOK]}]}


@contextmanager
def hostile_practice(script: Script, practice_id: str = "hostile") -> Iterator[Practice]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            script.asked.append(self.path)
            path, _, query = self.path.partition("?")
            path = path.rstrip("/").rsplit("/", 1)[-1]
            body = capability() if path == "metadata" else bundle(script, path, query) if path in BOOK else None
            data = json.dumps(body or {"resourceType": "OperationOutcome", "issue": []}).encode()
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Practice(practice_id, "Hostile Surgery", "H00001", "fhir-r4",
                       f"http://127.0.0.1:{server.server_address[1]}/fhir", timeout_s=5.0)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def appointment(rid: str, start: str, **more: Any) -> dict[str, Any]:
    return {"resourceType": "Appointment", "id": rid, "status": "fulfilled", "start": start,
            "created": start, "meta": {"lastUpdated": "2026-03-20T09:00:00+00:00"}, **more}


def slot(rid: str, start: str, end: str, **more: Any) -> dict[str, Any]:
    return {"resourceType": "Slot", "id": rid, "status": "busy", "start": start, "end": end,
            "meta": {"lastUpdated": "2026-03-20T09:00:00+00:00"}, **more}
