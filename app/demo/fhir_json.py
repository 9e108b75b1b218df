"""Small FHIR JSON helpers shared by the demo server: replies, OperationOutcomes, search bundles."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

Resource = dict[str, Any]
FHIR_JSON = "application/fhir+json; charset=utf-8"


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = FHIR_JSON
    headers: dict[str, str] = field(default_factory=dict)


def to_json(data: Any, pretty: bool = False) -> bytes:
    if pretty:
        return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_reply(status: int, data: Any, headers: dict[str, str] | None = None,
               content_type: str = FHIR_JSON, pretty: bool = False) -> Reply:
    return Reply(status, to_json(data, pretty), content_type, dict(headers or {}))


def outcome(status: int, code: str, message: str, headers: dict[str, str] | None = None,
            severity: str = "error") -> Reply:
    """An OperationOutcome reply; `code` is a FHIR issue-type such as not-found, invalid, login."""
    body = {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": message}]}
    return json_reply(status, body, headers)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def searchset(base: str, path: str, params: Sequence[tuple[str, str]], page: Sequence[Resource], *,
              offset: int, count: int, total: int, rest_mode: str = "match") -> Resource:
    """One page of a search (`page` holds the matches from `offset` on) with self/next/previous links.

    `params` are the request's parameters without paging ones; the links carry `_count` and an
    `_offset` that clients should treat as opaque (they follow the links, not build them).
    """
    def link(at: int) -> str:
        query = [*params, ("_count", str(count))] + ([("_offset", str(at))] if at else [])
        return f"{base}{path}?{urlencode(query)}"

    links = [{"relation": "self", "url": link(offset)}]
    if count and offset + count < total:
        links.append({"relation": "next", "url": link(offset + count)})
    if count and offset > 0:
        links.append({"relation": "previous", "url": link(max(0, offset - count))})
    entries = [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r,
                "search": {"mode": "match" if offset + n == 0 else rest_mode}}
               for n, r in enumerate(page[:count])]
    return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "meta": {"lastUpdated": now_iso()},
            "type": "searchset", "total": total, "link": links, "entry": entries}


def iter_references(value: Any) -> Iterator[dict[str, Any]]:
    """Every Reference-like object ({"reference": "..."}) inside a resource, however deep."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("reference"), str):
                yield item
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, dict | list))
