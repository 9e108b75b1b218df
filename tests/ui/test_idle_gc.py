"""Full garbage collections wait for a moment when no record is being put on screen (app/ui/idle_gc.py)."""

from __future__ import annotations

import gc

import pytest

from app.ui.idle_gc import IdleCollector

pytestmark = pytest.mark.gui


def test_a_full_collection_waits_while_records_are_being_built(qtbot) -> None:
    busy = [True]
    collector = IdleCollector(lambda: busy[0])
    gc.collect(1)  # a younger collection since the last full one: something new to look at
    assert not collector.collect_if_idle() and collector.collections == 0
    busy[0] = False
    assert collector.collect_if_idle() and collector.collections == 1
    assert gc.get_count()[2] == 0, "the full collection ran"
    assert not collector.collect_if_idle(), "nothing new since: no second walk of the heap"

