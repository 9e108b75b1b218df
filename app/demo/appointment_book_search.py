"""FHIR search over a demo appointment book: `Slot?start=`, `Appointment?date=`, `Encounter?date=`, `Schedule`,
each with `_lastUpdated`, answered a page at a time as JSON text.

Date semantics follow FHIR R4 search (3.1.1.4.2): a date is the whole (UK local) day, so `ge2025-01-01`
starts at its midnight and `le2025-03-31` ends at the next one; a dateTime with seconds is an instant.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from threading import Lock

from app.core.gui_turns import give_way
from app.demo.appointment_book import AppointmentBook, Row
from app.demo.appointment_book_fhir import BookRenderer
from app.demo.appointment_calendar import local_midnight_epoch, uk_offset_hours

#: the date parameter of each searchable type
DATE_PARAM = {"Slot": "start", "Appointment": "date", "Encounter": "date"}
#: resources written between two looks at the GUI thread (~1-2 ms of JSON)
SLICE = 200
Bounds = tuple[float | None, bool, float | None, bool]  # low, low inclusive, high, high inclusive


def parse_bounds(values: Sequence[str], name: str) -> Bounds:
    """ANDed prefixed values (eq, ge, gt, le, lt) of one date parameter as one interval."""
    low: float | None = None
    high: float | None = None
    low_inclusive = high_inclusive = True
    for value in values:
        prefix = value[:2] if value[:2].isalpha() else "eq"
        text = value[2:] if value[:2].isalpha() else value
        start, end, instant = _interval(text, name, value)
        # the resource's instant x against the value's range [start, end) (a date) or the instant itself
        candidates: list[tuple[str, float, bool]] = []
        if prefix in ("ge", "eq"):
            candidates.append(("low", start, True))
        if prefix == "gt":
            candidates.append(("low", start if instant else end, not instant))
        if prefix == "eq":
            candidates.append(("high", end, instant))
        if prefix == "le":
            candidates.append(("high", end, instant))
        if prefix == "lt":
            candidates.append(("high", start, False))
        if prefix not in ("eq", "ge", "gt", "le", "lt"):
            raise ValueError(f"{name}: the prefix '{prefix}' is not supported here (use eq, ge, gt, le or lt).")
        for side, at, inclusive in candidates:
            if side == "low" and (low is None or at > low or (at == low and not inclusive)):
                low, low_inclusive = at, inclusive
            elif side == "high" and (high is None or at < high or (at == high and not inclusive)):
                high, high_inclusive = at, inclusive
    return low, low_inclusive, high, high_inclusive


def _interval(text: str, name: str, value: str) -> tuple[float, float, bool]:
    """(start, end, is an instant) in epoch seconds for a FHIR date or dateTime search value."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = local_midnight_epoch(day)
            return start, local_midnight_epoch(date.fromordinal(day.toordinal() + 1)), False
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name} '{value}' is not a FHIR date (YYYY-MM-DD) or dateTime.") from None
    if when.tzinfo is None:  # the server's own (UK) time
        when = when.replace(tzinfo=UTC) - timedelta(hours=uk_offset_hours(when.date()))
    epoch = when.timestamp()
    return epoch, epoch, True


class BookSearch:
    """Searches of one book, the filtered rows of the last few kept so each next page is a slice."""

    def __init__(self, book: AppointmentBook) -> None:
        self.book = book
        self.renderer = BookRenderer(book)
        self._cache: OrderedDict[tuple[object, ...], tuple[list[Row], list[str]]] = OrderedDict()
        self._lock = Lock()

    def page(self, rtype: str, params: Sequence[tuple[str, str]], offset: int, count: int) -> tuple[int, list[str]]:
        """(total matches, the page's resources as JSON text)."""
        date_name = DATE_PARAM[rtype]
        dates = [v for n, v in params if n == date_name]
        updated = [v for n, v in params if n == "_lastUpdated"]
        bounds = parse_bounds(dates, date_name)
        after = _updated_after(updated)
        key = (rtype, bounds, after, self.book.version)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
        if found is None:
            found = (self.book.select(rtype, bounds, after), self.book.raw_rows(rtype, bounds, after))
            with self._lock:
                self._cache[key] = found
                while len(self._cache) > 32:
                    self._cache.popitem(last=False)
        rows, raw = found
        total = len(rows) + len(raw)
        render = self.renderer.render
        page: list[str] = []
        for at in range(offset, min(offset + count, len(rows)), SLICE):
            give_way()  # a slice at a time: the window's GUI thread first, when the demo runs in its process
            page.extend(render(rtype, r) for r in rows[at:min(at + SLICE, offset + count)])
        if offset + count > len(rows):
            page += raw[max(0, offset - len(rows)):offset + count - len(rows)]
        return total, page


def _updated_after(values: list[str]) -> float | None:
    """`_lastUpdated=gt<instant>` (the incremental read); other forms are refused."""
    if not values:
        return None
    if len(values) > 1 or not values[0].startswith("gt"):
        raise ValueError("_lastUpdated: only one gt<instant> is supported here.")
    low, _inclusive, _high, _ = parse_bounds(values, "_lastUpdated")
    assert low is not None
    return low
