"""A cut crossing two of mode, clinician type and category is by month (or a range of months): by week the store
refuses it, so a cross-cut's weeks can never be set against its months (the cross tables are protected a month at
a time; the months and weeks of the two-way tables are protected together)."""

from __future__ import annotations

import pytest

from app.insight.store import InsightStore
from tests.insight.test_suppression import _load


def test_a_cross_cut_by_week_is_refused_and_by_month_answered(store: InsightStore) -> None:
    _load(store, {("A", "MARCH", "telephone"): 50, ("B", "MARCH", "telephone"): 3, ("A", "FEB", "video"): 20})
    crossing = {"mode": "telephone", "clinician-type": "gp"}
    for by, period in (("week", "2026-03"), ("practice", "2026-W11"), ("locality", "2026-W11"),
                       ("clinician-type", "2026-W11")):
        filters = crossing if by != "clinician-type" else {"mode": "telephone"}
        with pytest.raises(ValueError, match="by month or a range of months, not by week"):
            store.figures("appointments", by, period, filters=filters)
    monthly = store.figures("appointments", "clinician-type", "2026-03", filters={"mode": "telephone"})
    assert monthly and all(f.status == "ok" for f in monthly)
    assert store.figures("appointments", "month", "2026-02..2026-03", filters=crossing)
    # one dimension by week is a two-way table's: answered
    assert store.figures("appointments", "week", "2026-03", filters={"mode": "telephone"})
