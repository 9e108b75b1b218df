"""Retry in a failed section, in the real window: the core reads that section again through the normal path
(journaled first, naming only that section) and it replaces the failure in place; the rest stays."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app.core.audit.model import Action
from app.core.model import SectionName
from tests.ui.test_window import TIMEOUT_MS, open_from_results, search

pytestmark = pytest.mark.gui


def test_a_failed_section_is_retried_alone_in_the_window(qtbot, window, network) -> None:
    server = next(s for s in network.servers if not s.spec.supports_everything)  # reads sections one by one
    patient = next(p for p in server.population if p.nhs_number)
    search(qtbot, window, patient.nhs_number)
    summary = next(p for p in window.search_panel.model.patients if p.practice_id == server.spec.id)
    with server.faults.override(mode="http-500", match="Medication"):
        view = open_from_results(qtbot, window, summary)
        failed = view.sections[SectionName.MEDICATIONS]
        assert failed.section.status == "failed" and failed.retry_button is not None
        allergies = view.sections[SectionName.ALLERGIES]
        qtbot.waitUntil(failed.retry_button.isVisible, timeout=2000)
        qtbot.mouseClick(failed.retry_button, Qt.MouseButton.LeftButton)  # still failing: said again, with Retry
        qtbot.waitUntil(lambda: view.sections[SectionName.MEDICATIONS] is not failed, timeout=TIMEOUT_MS)
    still = view.sections[SectionName.MEDICATIONS]
    assert still.section.status == "failed" and still.retry_button is not None and still.retry_button.isEnabled()
    qtbot.mouseClick(still.retry_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.sections[SectionName.MEDICATIONS].section.status == "loaded", timeout=TIMEOUT_MS)
    block = view.sections[SectionName.MEDICATIONS]
    assert block.retry_button is None and block.groups and not block.message.startswith("Could not")
    assert view.sections[SectionName.ALLERGIES] is allergies, "the rest of the record stays as it was"
    assert view.record.sections[SectionName.MEDICATIONS].status == "loaded"
    assert view.banner is not None and view.banner.isVisibleTo(view)
    reads = window.core.journal.query(patient_nhs_number=patient.nhs_number, actions=[Action.READ])
    assert [e.sections for e in reads if e.sections == ("medications",)], "the retry is journaled, naming only it"
