"""What the insight store answers besides figures: practice status, data quality, mapping consistency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class PracticeStatusRow:
    id: str
    name: str
    status: str  # "ok" | "not provided" | "failed"
    error: str | None
    refreshed_at: datetime | None
    list_size: int | None
    #: the store holds rows of this practice (an earlier refresh ended well), whatever its last one did
    has_rows: bool = False

    @property
    def tabled(self) -> bool:
        """Its rows are in the tables every figure is protected over: ok, or failed after an earlier refresh
        ended well. A practice that fails keeps its cells there, so that no figure over the others, asked after
        the failure, differs from one asked before it by that practice's hidden cells."""
        return self.status == "ok" or (self.status == "failed" and self.has_rows)


@dataclass(frozen=True)
class QualityRow:
    """One practice's data-quality badge: shares are of its appointments (0..1), None when it has none."""

    practice_id: str
    name: str
    status: str
    appointments: int
    unmapped_category: float | None
    unmapped_mode: float | None
    unmapped_clinician_type: float | None
    missing_status: float | None  # no status, or one that is not FHIR R4's
    missing_created: float | None  # no creation time (not in the booking-time measures)
    unreadable: int  # resources the practice sent that could not be read
    not_provided: tuple[str, ...]  # resource types the practice's system does not offer


@dataclass(frozen=True)
class MappingUse:
    practice_id: str
    category: str | None  # None: left unmapped
    slots: int


@dataclass(frozen=True)
class MappingIssue:
    """One local slot type text mapped to more than one national category (across practices or within one)."""

    local_type: str  # as first seen
    uses: tuple[MappingUse, ...]

    @property
    def categories(self) -> tuple[str | None, ...]:
        return tuple(sorted({u.category for u in self.uses}, key=lambda c: (c is None, c or "")))
