"""The idle lock: a locked window shows no patient data (widget tree and screenshot), unlocking takes a
fresh OpenID Connect sign-in, and signing out forgets every token."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QAbstractItemView, QApplication, QLabel, QWidget

from app.core.identity import Identity
from app.core.nhs_number import format_nhs_number
from app.core.session_lock import IdleLock
from app.core.sessions import PracticeStatus
from app.demo.oidc_provider import DemoOidcProvider
from app.ui.lock import WindowLock
from tests.ui.test_window import TIMEOUT_MS, open_from_results, search, shared_patient

pytestmark = pytest.mark.gui


def browser(url: str) -> None:
    """The injected open_url: a 'browser' that follows the provider's redirect back to the loopback."""
    def follow() -> None:
        with httpx2.Client(trust_env=False, follow_redirects=False) as client:
            answer = client.get(url)
            client.get(answer.headers["location"])
    threading.Thread(target=follow, daemon=True).start()


@pytest.fixture
def provider() -> Iterator[DemoOidcProvider]:
    with DemoOidcProvider.start() as p:
        yield p


@pytest.fixture
def window(qtbot, network, provider):
    from app.ui.app import build_window

    win, bridge = build_window(network.practices)
    assert win.core is not None
    win.core.identity = Identity(provider.settings, open_url=browser)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.sign_in_finished, timeout=TIMEOUT_MS):
        win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()
    bridge.shutdown(win.core)


def visible_texts(root: QWidget) -> list[str]:
    """Every text a person could read: visible labels and every cell of visible item views."""
    texts: list[str] = []
    widgets = [root, *root.findChildren(QWidget)]
    widgets += [w for w in QApplication.topLevelWidgets() if w is not root]
    for widget in widgets:
        if not widget.isVisible():
            continue
        if isinstance(widget, QLabel):
            texts.append(widget.text())
        elif isinstance(widget, QAbstractItemView) and widget.model() is not None:
            model = widget.model()
            stack = [model.index(r, c) for r in range(model.rowCount()) for c in range(model.columnCount())]
            while stack:
                index = stack.pop()
                texts.append(str(index.data() or ""))
                stack += [model.index(r, c, index) for r in range(model.rowCount(index))
                          for c in range(model.columnCount(index))]
        texts.append(widget.windowTitle())
    return texts


def show_a_record(qtbot, win, network) -> tuple[str, str]:
    nhs, pairs, family = shared_patient(network)
    search(qtbot, win, nhs)
    pid, lid = pairs[0]
    patient = next(p for p in win.search_panel.model.patients if (p.practice_id, p.local_id) == (pid, lid))
    open_from_results(qtbot, win, patient)
    return family, nhs


def test_idle_lock_hides_patient_data_until_the_same_user_signs_in(qtbot, window, network, tmp_path: Path) -> None:
    win = window
    # sign in first, as the app does when [identity] is configured
    signed = win.bridge.submit(win.core.identity.sign_in())
    qtbot.waitUntil(signed.done, timeout=TIMEOUT_MS)
    win.core.set_user(signed.result().audit_user())

    family, nhs = show_a_record(qtbot, win, network)
    shown = " ".join(visible_texts(win))
    assert family.upper() in shown.upper() or family in shown
    assert format_nhs_number(nhs) in shown or nhs in shown

    now = [1000.0]  # the idle clock is the test's: no waiting on real time
    lock = WindowLock(win, IdleLock(timeout_s=60, clock=lambda: now[0]), sample_every_ms=0)
    # input keeps it open: five minutes of input less than a minute apart
    for step in range(6):
        now[0] += 50
        qtbot.waitUntil(lambda: lock.listening, timeout=TIMEOUT_MS)  # input is sampled: listening again
        qtbot.mouseMove(win.search_panel, pos=win.search_panel.rect().center() + QPoint(step * 7 % 20, step))
        assert not lock.listening, "input seen: the filter is off until the next sample"
        lock.timer.timeout.emit()  # the idle timer's check, as if it fired now
    assert not lock.locked
    now[0] += 61  # a minute without input
    with qtbot.waitSignal(lock.locked_changed, timeout=TIMEOUT_MS):
        lock.timer.timeout.emit()
    assert lock.locked

    texts = " | ".join(visible_texts(win))
    assert family.upper() not in texts.upper()
    assert nhs not in texts.replace(" ", "")
    assert "Mosaic is locked" in texts
    assert win.pages.currentWidget() is lock.page
    assert not win.practices_dock.isVisible() and not win.practices_strip.isVisible()
    picture = win.grab()
    picture.save(str(tmp_path / "locked.png"))
    central = win.pages.grab().toImage()
    assert central == lock.page.grab().toImage()  # what the central area shows is the lock page, nothing else
    assert not win.find_action.isEnabled() and lock.sign_out_action.isEnabled()

    # input while locked does not unlock
    qtbot.mouseMove(win, pos=win.rect().center())
    assert lock.locked

    with qtbot.waitSignal(lock.locked_changed, timeout=TIMEOUT_MS) as blocker:
        lock.page.button.click()
    assert blocker.args == [False]
    assert win.pages.currentWidget() is not lock.page
    assert win.practices_dock.isVisible() or win.practices_strip.isVisible(), "the practices as before the lock"
    assert family.upper() in " ".join(visible_texts(win)).upper()
    assert win.core.user is not None and win.core.user.login == "clinician1"


def test_sign_out_forgets_every_token_and_locks(qtbot, window, network) -> None:
    win = window
    core = win.core
    signed = win.bridge.submit(core.identity.sign_in())
    qtbot.waitUntil(signed.done, timeout=TIMEOUT_MS)
    assert core.identity.user is not None and core.identity.user.tokens is not None
    search(qtbot, win, "smith")
    online = [s.practice.id for s in core.sessions.states() if s.status is PracticeStatus.ONLINE]
    assert online
    token_practices = [pid for pid in online if core.sessions.practice(pid).auth == "client-credentials"]
    auths = [core.sessions.online_adapter(pid)._auth for pid in token_practices]  # type: ignore[union-attr]
    assert all(a is not None and a._token for a in auths)

    lock = WindowLock(win, IdleLock(timeout_s=600))
    lock.sign_out_action.trigger()
    assert lock.locked and win.pages.currentWidget() is lock.page
    qtbot.waitUntil(lambda: all(s.status is PracticeStatus.OFFLINE for s in core.sessions.states()),
                    timeout=TIMEOUT_MS)
    assert core.identity.user is None
    assert all(core.sessions.online_adapter(pid) is None for pid in online)
    assert all(a._token is None for a in auths)  # the practices' cached access tokens are gone
    assert win.search_panel.model.rowCount() == 0 and not win.records.views()

    with qtbot.waitSignal(lock.locked_changed, timeout=TIMEOUT_MS):
        lock.page.button.click()
    qtbot.waitUntil(lambda: any(s.status is PracticeStatus.ONLINE for s in core.sessions.states()),
                    timeout=TIMEOUT_MS)
    assert core.identity.user is not None


def test_idle_lock_policy_without_qt() -> None:
    now = [0.0]
    policy = IdleLock(timeout_s=600, clock=lambda: now[0])
    now[0] = 599
    assert not policy.due()
    policy.touch()
    now[0] = 1198
    assert not policy.due()
    now[0] = 1199.5
    assert policy.due()
    policy.lock()
    assert policy.locked and not policy.due()
    policy.unlocked_by_sign_in()
    assert not policy.locked and policy.timeout_ms == 600_000
    with pytest.raises(ValueError):
        IdleLock(timeout_s=0)


def test_ctrl_l_locks_at_once(qtbot, window, network) -> None:
    win = window
    lock = win.lock
    assert lock is not None and not lock.locked
    show_a_record(qtbot, win, network)
    with qtbot.waitSignal(lock.locked_changed, timeout=TIMEOUT_MS) as blocker:
        qtbot.keyClick(win.search_panel.box, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert blocker.args == [True]
    assert win.pages.currentWidget() is lock.page
    assert lock.page.detail.text() == "Patient data is hidden. Sign in again to carry on."
