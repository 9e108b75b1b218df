"""Three cycles of the clinical-day soak (tests/perf/soak_window.py, the same driver), so that CI runs it:
searches by name, NHS number and date of birth, records from FHIR R4, GP Connect and SMART practices,
split/move/close tabs, the access history, lock and unlock, a practice down and back (cycle 1), expired
practice tokens and the user's sign-in renewed (cycle 2). Any error the soak counts fails the test."""

from __future__ import annotations

import pytest

from app.core.secrets import env_name
from tests.perf.soak_window import LocalControl, run_soak, start_network

pytestmark = pytest.mark.gui
SEED = 20261202  # fixed, so every run drives the same day; the soak itself prints a fresh one per run
CYCLES = 3


def test_three_cycles_of_a_clinical_day_without_an_error(qtbot, monkeypatch) -> None:
    print(f"soak seed {SEED} (rerun: python -m tests.perf.soak_window --cycles {CYCLES} --seed {SEED})")
    network = start_network(practices=5, patients=200, latency_ms=0)
    try:
        for practice_id, secret in network.secrets.items():
            monkeypatch.setenv(env_name(practice_id), secret)
        result = run_soak(LocalControl(network), CYCLES, SEED, max_errors=20)
    finally:
        network.stop()
    print(result.line())
    assert not result.errors, "\n\n".join(f"[{e.where}] {e.kind}: {e.text}" for e in result.errors)
    assert result.cycles == CYCLES
    assert result.records_opened >= 3 * CYCLES


def test_the_soak_counts_what_nobody_handled(qtbot) -> None:
    """The soak's error hooks: an exception in a thread, a Qt warning and an ERROR logged by Mosaic each
    count, with their text; the hooks are gone after the block."""
    import io
    import logging
    import threading

    from PySide6.QtCore import qWarning

    from tests.perf.soak_window import ErrorLog

    errors = ErrorLog(io.StringIO())
    with errors.hooks():
        thread = threading.Thread(target=lambda: 1 / 0, name="failing")
        thread.start()
        thread.join()
        qWarning("QObject: a deleted object was used")
        logging.getLogger("mosaic.ui.bridge").error("GUI callback failed")
    assert [e.kind for e in errors.items] == ["unhandled exception in thread failing", "Qt warning", "logged error"]
    assert "ZeroDivisionError" in errors.items[0].text
    assert "a deleted object was used" in errors.items[1].text
    assert "GUI callback failed" in errors.items[2].text
    logging.getLogger("mosaic.ui.bridge").error("after the block: not counted")
    assert len(errors.items) == 3
