"""What one doctor check reports: its name, ok / warn / fail, what it found and, when not ok, what to do."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"  # works, but something should be looked at (a clock off by minutes); exit status stays 0
    FAIL = "fail"  # Mosaic cannot do this part of its work here; exit status 1


@dataclass(frozen=True)
class CheckResult:
    #: stable id for scripts: qt-libraries, keyring, machine-file, user-file, policy, journal-folder,
    #: journal-schema, practice:<id>, central-audit, insight-store, identity
    name: str
    title: str  # for people: "Practice Riverside Surgery (riverside)"
    status: Status
    detail: str
    action: str = ""  # what to do, for warn and fail
    seconds: float = 0.0

    @classmethod
    def ok(cls, name: str, title: str, detail: str) -> CheckResult:
        return cls(name, title, Status.OK, detail)

    @classmethod
    def warn(cls, name: str, title: str, detail: str, action: str) -> CheckResult:
        return cls(name, title, Status.WARN, detail, action)

    @classmethod
    def fail(cls, name: str, title: str, detail: str, action: str) -> CheckResult:
        return cls(name, title, Status.FAIL, detail, action)

    def timed(self, seconds: float) -> CheckResult:
        return replace(self, seconds=seconds)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "status": str(self.status), "detail": self.detail,
                "action": self.action or None, "seconds": round(self.seconds, 3)}
