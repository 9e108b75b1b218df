"""`mosaic demo`'s path: one sign-in through the OpenID provider, then every practice opens — FHIR R4,
GP Connect and SMART Backend Services alike — and the signed-in clinician is who the journal names."""

from __future__ import annotations

import pytest

from app.core.audit.model import Action
from app.core.secrets import env_name
from app.core.sessions import PracticeStatus
from app.demo.network import DemoNetwork
from app.demo.oidc_provider import demo_browser
from app.ui.app import build_window

pytestmark = pytest.mark.gui
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def full_demo():
    network = DemoNetwork.start(practices=5, patients=80, gp_connect=(1, 3), identity=True, smart_backend=True)
    try:
        yield network
    finally:
        network.stop()


def test_one_sign_in_opens_every_kind_of_practice(qtbot, full_demo, monkeypatch) -> None:
    for practice_id, secret in full_demo.secrets.items():
        monkeypatch.setenv(env_name(practice_id), secret)
    kinds = {p.adapter for p in full_demo.practices} | {p.auth for p in full_demo.practices}
    assert {"gp-connect", "fhir-r4", "private-key-jwt"} <= kinds
    win, bridge = build_window(full_demo.practices, identity=full_demo.identity.settings, open_url=demo_browser)
    qtbot.addWidget(win)
    try:
        with qtbot.waitSignal(win.sign_in_finished, timeout=TIMEOUT_MS) as signed:
            win.show()
        states = signed.args[0]
        assert [s.status for s in states] == [PracticeStatus.ONLINE] * 5, [s.detail for s in states]
        assert win.core.identity.user.login == "clinician1"
        assert win.user_label.text() == "Signed in: Dr Asha Patel (GP)"
        shared = next(s for s in full_demo.shared_patients if "oakwood" in (s.first[0], s.second[0]))
        with qtbot.waitSignal(win.search_finished, timeout=TIMEOUT_MS) as searched:
            win.run_search(shared.nhs_number)
        outcome = searched.args[0]
        assert {"oakwood"} <= {p.practice_id for p in outcome.patients}
        entries = win.core.journal.query(user="clinician1", actions=[Action.SEARCH])
        assert entries and entries[0].user.display_name == "Dr Asha Patel"
    finally:
        bridge.shutdown(win.core)
