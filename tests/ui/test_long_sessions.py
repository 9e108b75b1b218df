"""The window through a long day: the Practices panel says which practices are live; a practice that drops
shows as offline and retrying and comes back by itself; a sign-in the provider will not renew asks the
user to sign in again, and the records they had open stay open. Real demo servers, a fast retry schedule
and short token lifetimes given to the constructors; waits are on what the window shows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import Qt

from app.core.sessions import Backoff, PracticeState, PracticeStatus
from app.demo.oidc_provider import DemoOidcProvider, demo_browser
from app.ui.app import build_window
from app.ui.main_window import MainWindow
from app.ui.practices_panel import state_text
from tests.ui.test_window import TIMEOUT_MS, open_from_results, search, shared_patient

pytestmark = pytest.mark.gui
FAST = Backoff(first_s=0.05, factor=2.0, cap_s=0.4, jitter=0.0)


@contextmanager
def long_window(qtbot, practices, provider: DemoOidcProvider | None = None) -> Iterator[MainWindow]:
    """The real window, shown and signed in, retrying and checking practices on the fast schedule."""
    win, bridge = build_window(practices, identity=provider.settings if provider else None, open_url=demo_browser,
                               core_options={"backoff": FAST, "health_interval_s": 0.05})
    qtbot.addWidget(win)
    try:
        with qtbot.waitSignal(win.sign_in_finished, timeout=TIMEOUT_MS):
            win.show()
        qtbot.waitExposed(win)
        yield win
    finally:
        win.close()
        bridge.shutdown(win.core)


def open_a_record(qtbot, win: MainWindow, network):
    """Search for a patient registered at two practices and open the first registration: the view."""
    nhs, pairs, _family = shared_patient(network)
    search(qtbot, win, nhs)
    patient = next(p for p in win.search_panel.model.patients if (p.practice_id, p.local_id) == pairs[0])
    return open_from_results(qtbot, win, patient), patient


def test_the_countdown_says_whole_seconds_to_the_next_attempt(network) -> None:
    practice = network.practices[0]
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    waiting = PracticeState(practice, PracticeStatus.RETRYING, f"{practice.name} could not be reached.",
                            retry_at=now + timedelta(seconds=12.2), attempt=3)
    assert state_text(waiting, now) == f"Offline · retrying in 13 s: {practice.name} could not be reached."
    assert state_text(waiting, now + timedelta(seconds=13)).startswith("Offline · trying again now…: ")
    assert state_text(PracticeState(practice, PracticeStatus.SIGN_IN_NEEDED, "ended")) == "Sign in again needed"


def test_a_practice_that_drops_is_shown_retrying_and_comes_back_by_itself_with_its_record_open(
        qtbot, network) -> None:
    with long_window(qtbot, network.practices) as win:
        view, patient = open_a_record(qtbot, win, network)
        views = win.records.views()
        dropped = network.server(patient.practice_id)
        panel = win.practices_panel
        row = panel.rows[dropped.spec.id]
        dropped.faults.mode = "down"  # the network fixture resets faults after the test
        qtbot.waitUntil(lambda: row.state.status is PracticeStatus.RETRYING and row.state.attempt >= 2,
                        timeout=TIMEOUT_MS)
        shown = row.state_label.text().split("</span> ", 1)[1]
        assert re.match(r"Offline · (retrying in \d+ s|trying again now…): ", shown), shown
        assert row.retry_button.isEnabled()  # Retry tries now
        assert "1 offline, retrying" in panel.summary.text()
        assert win.online_label.text() == "4 of 5 practices online"
        assert win.records.views() == views and view in views  # the record stays open

        dropped.faults.mode = None  # the server is back
        qtbot.waitUntil(lambda: row.state.status is PracticeStatus.ONLINE, timeout=TIMEOUT_MS)
        assert "Online · " in row.state_label.text() and not row.retry_button.isEnabled()
        assert not panel.countdown.isActive()  # nothing waiting: the countdown stops ticking
        assert win.online_label.text() == "5 of 5 practices online"
        assert win.records.views() == views


def test_a_sign_in_that_cannot_be_renewed_asks_to_sign_in_again_and_keeps_the_records_open(
        qtbot, network) -> None:
    with DemoOidcProvider.start(access_token_lifetime_s=1.0) as provider, \
            long_window(qtbot, network.practices, provider) as win:
        panel = win.practices_panel
        assert panel.sign_in_button.text() == "Sign in to all practices"
        view, _patient = open_a_record(qtbot, win, network)
        views = win.records.views()
        provider.revoke_refresh_tokens()  # the provider ends the session: the next renewal is refused
        qtbot.waitUntil(lambda: all(r.state.status is PracticeStatus.SIGN_IN_NEEDED for r in panel.rows.values()),
                        timeout=TIMEOUT_MS)
        for row in panel.rows.values():
            assert "Sign in again needed" in row.state_label.text()
            assert not row.retry_button.isEnabled()  # no practice opens until the user signs in again
        assert panel.sign_in_button.text() == "Sign in again" == panel.sign_in_button.accessibleName()
        assert "open records stay open" in panel.summary.text()
        assert win.online_label.text() == "0 of 5 practices online"
        assert win.records.views() == views and view in views

        with qtbot.waitSignal(win.sign_in_finished, timeout=TIMEOUT_MS) as signed:
            qtbot.mouseClick(panel.sign_in_button, Qt.MouseButton.LeftButton)
        assert [s.status for s in signed.args[0]] == [PracticeStatus.ONLINE] * 5
        assert provider.issued["authorization_code"] == 2  # signed in again, in the browser
        assert panel.sign_in_button.text() == "Sign in to all practices"
        assert win.online_label.text() == "5 of 5 practices online"
        assert win.records.views() == views  # nothing was closed
        assert win.core is not None and win.core.user is not None and win.core.user.login == "clinician1"
