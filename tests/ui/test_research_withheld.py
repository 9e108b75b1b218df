"""The research view in the real window: a section the study's role does not include says "Withheld for this
study", in plain words, never a practice's failure or its raw key; the record's other sections are shown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtWidgets import QLabel

from app.core import os_account
from app.core.model import SectionName
from app.ui.main_window import MainWindow
from app.ui.record_sections import WITHHELD_FOR_STUDY
from tests.conftest import shown_window
from tests.core.test_policy import write_policy
from tests.core.test_research_view import KEY, LOGIN, a_plain_patient, criteria_for, fhir_server, research_policy
from tests.ui.test_research import window_texts
from tests.ui.test_window import open_from_results, search

pytestmark = pytest.mark.gui

SHOWN = ["problems", "medications", "allergies", "observations", "immunisations"]  # not encounters


@pytest.fixture
def study_window(qtbot, network, tmp_path, monkeypatch) -> Iterator[MainWindow]:
    import keyring

    from tests.core.test_research_view import EmptyKeyring

    previous = keyring.get_keyring()
    keyring.set_keyring(EmptyKeyring())
    policy = research_policy().replace("research = true", f"research = true\nsections = {SHOWN!r}".replace("'", '"'))
    write_policy(tmp_path, policy, monkeypatch)
    monkeypatch.setattr(os_account, "os_login", lambda: LOGIN)
    monkeypatch.setenv("MOSAIC_SECRET_STUDY_DIAB", KEY)
    win, bridge = shown_window(qtbot, network.practices)
    try:
        yield win
    finally:
        win.close()
        bridge.shutdown(win.core)
        keyring.set_keyring(previous)


def test_a_section_outside_the_study_reads_withheld_for_this_study(qtbot, study_window, network) -> None:
    win = study_window
    server = fhir_server(network)
    p = a_plain_patient(server)
    outcome = search(qtbot, win, criteria_for(server, p))
    summary = next(s for s in outcome.patients if s.pseudonym)
    view = open_from_results(qtbot, win, summary)
    assert view.state == "loaded" and view.research
    block = view.sections[SectionName.ENCOUNTERS]
    assert block.section.status == "withheld" and block.message == WITHHELD_FOR_STUDY
    assert block.retry_button is None, "nothing to retry: it is not a failure"
    labels = [label.text() for label in block.findChildren(QLabel)]
    assert labels == ["Consultations", WITHHELD_FOR_STUDY]
    for name in SHOWN:
        assert view.sections[SectionName(name)].section.status == "loaded"
    texts = window_texts(win)
    assert "Could not load consultations" not in texts and "sent nothing" not in texts
    assert "role: encounters" not in texts, "the section is named in words, never by its key"
