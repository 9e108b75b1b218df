"""A day in clinic, as a benchmark: the real window (offscreen) driven cycle after cycle against the demo
practices, as a hub clinician uses it through a working day.

Each cycle: search by name, by NHS number and by date of birth, and open records from several practices
(FHIR R4, GP Connect, SMART Backend Services); split the view, move, switch and close tabs; open the access
history and filter it to the last patient; lock the window and sign in again. Every fifth cycle one practice
goes down (its search and its records must fail, naming it) and comes back (Retry in the practices panel,
Retry on the record); every fifth cycle, offset, the practices' access tokens expire (through the demo
token endpoint's state) and the next record from that practice must still open (silent renewal).

Any error counts: a step that does not do what it should, a record still loading or being built after
`--stuck-s` seconds (named, with its state), an exception reaching sys.excepthook or threading.excepthook,
an ERROR logged by Mosaic, a Qt warning (deleted objects and the like). Each is printed with its text.
A 5 ms timer on the GUI thread measures the longest stall (tests/perf/_common.stall_meter).

The window runs in a child process. This process serves the demo practices (as remote practices would
be: their work neither stalls the window's GUI thread nor counts in its memory), pulls the levers the
child asks for over a local control channel (faults, token expiry), and supervises: a crash inside Qt is
reported as an error of its cycle and step (faulthandler prints the stack) and the last line is still
printed. The user's tokens from the demo OpenID provider last USER_TOKEN_LIFETIME_S (6 s), so the core
renews the sign-in silently many times a run. The last line is exactly
`soak: N cycles, E errors, RSS start X MB end Y MB, longest GUI stall Z ms`; the exit status is 1 on any
error or crash. Goal: 300 cycles, 0 errors, RSS growth <= 60 MB, stall <= 50 ms.

    python -m tests.perf.soak_window [--cycles 20] [--seed S] [--latency-ms 100] [--patients 2000]
                                     [--stuck-s 30] [--max-errors 50] [--json FILE]
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

try:
    from tests.perf import _common as common
except ImportError:  # run as a script: python tests/perf/soak_window.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.perf import _common as common

NAME = "soak_window"
DEFAULT_CYCLES = 20
PRACTICES = 5
GP_CONNECT = (1, 3)  # as `mosaic demo` has them among five practices
STUCK_S = 30.0  # a record still loading (or being put on screen) after this long is stuck
STEP_TIMEOUT_S = 20.0  # any other awaited condition (a search, a sign-in, the history) within this
MAX_TABS = 6  # more than this open at the end of a cycle, and the clinician closes some
DOWN_EVERY, DOWN_AT = 5, 1  # cycle % DOWN_EVERY == DOWN_AT: one practice goes down and comes back
TOKENS_EVERY, TOKENS_AT = 5, 2  # likewise: access tokens expire and must be renewed silently
MAX_ERRORS = 50  # stop early after this many: the run has said what it needs to
STALL_GOAL_MS = 50
RSS_GROWTH_GOAL_MB = 60
TICK_MS = 5
#: the demo OpenID provider's access and ID tokens last this long in the soak, so the user's sign-in is
#: renewed many times a run (the provider's own default is an hour)
USER_TOKEN_LIFETIME_S = 6.0
CONTROL_KEY_ENV = "SOAK_CONTROL_KEY"  # the child's key to the supervising process's control channel
#: what the offscreen platform says about itself; not Mosaic's doing
QT_CHATTER = ("propagateSizeHints", "This plugin does not support", "QFont::fromString")


class SoakError(Exception):
    """A step did not do what it should."""


# --- errors -------------------------------------------------------------------------------------------

@dataclass
class SoakErrorRecord:
    kind: str
    where: str
    text: str


class ErrorLog:
    """Every error of the run, printed as it happens. `where` names the cycle and step."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.items: list[SoakErrorRecord] = []
        self.where = "start"
        self.out = out or sys.stdout

    def add(self, kind: str, text: str) -> None:
        record = SoakErrorRecord(kind, self.where, text.rstrip())
        self.items.append(record)
        self.out.write(f"soak error #{len(self.items)} [{record.where}] {kind}: {record.text}\n")
        self.out.flush()

    def add_exception(self, kind: str, exc: BaseException) -> None:
        if isinstance(exc, SoakError):
            self.add(kind, str(exc))
        else:
            self.add(kind, "".join(traceback.format_exception(exc)))

    @contextlib.contextmanager
    def hooks(self) -> Iterator[None]:
        """Count exceptions nobody handled (Python, threads, Qt virtual overrides), ERRORs Mosaic logs and
        Qt's warnings as errors, for as long as the block runs."""
        from PySide6.QtCore import QtMsgType, qInstallMessageHandler

        errors = self

        def excepthook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
            errors.add("unhandled exception", "".join(traceback.format_exception(kind, value, tb)))

        def thread_hook(args: threading.ExceptHookArgs) -> None:
            if args.exc_type is SystemExit:
                return
            text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
            name = args.thread.name if args.thread is not None else "?"
            errors.add(f"unhandled exception in thread {name}", text)

        def qt_message(kind: QtMsgType, context: Any, message: str) -> None:
            if kind in (QtMsgType.QtDebugMsg, QtMsgType.QtInfoMsg) or any(c in message for c in QT_CHATTER):
                return
            where = f" ({context.file}:{context.line})" if context is not None and context.file else ""
            errors.add(f"Qt {kind.name.removeprefix('Qt').removesuffix('Msg').lower()}", message + where)

        class Logged(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                text = f"{record.name}: {record.getMessage()}"
                if record.exc_info:
                    text += "\n" + "".join(traceback.format_exception(*record.exc_info))
                errors.add("logged error", text)

        handler = Logged(logging.ERROR)
        root = logging.getLogger()
        old_hooks = sys.excepthook, threading.excepthook
        sys.excepthook, threading.excepthook = excepthook, thread_hook
        old_qt = qInstallMessageHandler(qt_message)
        root.addHandler(handler)
        try:
            yield
        finally:
            root.removeHandler(handler)
            qInstallMessageHandler(old_qt)
            sys.excepthook, threading.excepthook = old_hooks


# --- driving the window, as pytest-qt's qtbot does (the tests' helpers take either) -------------------

class Driver:
    """Keys, clicks and waits on the GUI thread: the subset of pytest-qt's qtbot that the window tests'
    helpers use (keyClick, keyClicks, mouseClick, waitSignal, waitUntil), with timeouts that raise
    SoakError saying what was awaited. Waits run the event loop until a condition holds; never a sleep.

    `after_input`, when set, runs after every key or click: the day lets the event loop turn there, as it
    does between a person's keystrokes, so that two actions never count as one long GUI stall."""

    def __init__(self) -> None:
        self.after_input: Callable[[], None] | None = None

    def _input_done(self) -> None:
        if self.after_input is not None:
            self.after_input()

    def keyClick(self, widget: Any, key: Any, modifier: Any = None) -> None:  # noqa: N802 - qtbot's name
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest

        QTest.keyClick(widget, key, modifier if modifier is not None else Qt.KeyboardModifier.NoModifier)
        self._input_done()

    def keyClicks(self, widget: Any, text: str) -> None:  # noqa: N802
        from PySide6.QtTest import QTest

        QTest.keyClicks(widget, text)
        self._input_done()

    def mouseClick(self, widget: Any, button: Any) -> None:  # noqa: N802
        from PySide6.QtTest import QTest

        QTest.mouseClick(widget, button)
        self._input_done()

    def wait_until(self, condition: Callable[[], object], timeout_s: float, what: str | Callable[[], str]) -> None:
        """Run the event loop until `condition()` is true; SoakError (saying `what`) after `timeout_s`."""
        from PySide6.QtCore import QEventLoop, QTimer

        if condition():
            return
        deadline = time.monotonic() + timeout_s
        loop = QEventLoop()
        poll = QTimer()
        poll.setInterval(10)
        done = [False]

        def check() -> None:
            if condition():
                done[0] = True
                loop.quit()
            elif time.monotonic() >= deadline:
                loop.quit()

        poll.timeout.connect(check)
        poll.start()
        loop.exec()
        poll.stop()
        if not done[0]:
            raise SoakError(f"{what() if callable(what) else what} (waited {timeout_s:.0f} s)")

    def waitUntil(self, condition: Callable[[], object], timeout: int = 5000) -> None:  # noqa: N802
        self.wait_until(condition, timeout / 1000, f"a condition of {getattr(condition, '__qualname__', condition)}")

    @contextlib.contextmanager
    def waitSignal(self, signal: Any, timeout: int = 5000, check_params_cb: Callable[..., bool] | None = None,
                   what: str | Callable[[], str] | None = None) -> Iterator[Any]:  # noqa: N802
        """`with driver.waitSignal(sig, timeout=ms) as blocker: trigger()`; then `blocker.args`."""
        blocker = _Blocker()

        def slot(*args: Any) -> None:
            if blocker.args is None and (check_params_cb is None or check_params_cb(*args)):
                blocker.args = list(args)

        signal.connect(slot)
        try:
            yield blocker
            self.wait_until(lambda: blocker.args is not None, timeout / 1000,
                            what or f"the signal {getattr(signal, 'signal', signal)}")
        finally:
            with contextlib.suppress(RuntimeError, TypeError):
                signal.disconnect(slot)


@dataclass
class _Blocker:
    args: list[Any] | None = None


# --- the demo practices, here or in the supervising process ---------------------------------------------

class DemoControl:
    """What the day needs to know about the demo practices, and the levers it pulls on them (faults,
    token expiry). LocalControl holds the network in this process (tests/ui/test_soak_short.py);
    RemoteControl asks the supervising process, where the soak's practices run, as remote practices would
    (so that their work neither stalls this process's GUI thread nor counts in its memory)."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.practices: list[Any] = snapshot["practices"]
        self.identity_settings: Any = snapshot["identity_settings"]
        self.names: dict[str, str] = snapshot["names"]
        self.ids: list[str] = list(self.names)
        self.gp_connect_ids: frozenset[str] = frozenset(snapshot["gp_connect_ids"])
        self.fhir_ids: list[str] = [pid for pid in self.ids if pid not in self.gp_connect_ids]
        self.token_ids: list[str] = snapshot["token_ids"]  # practices whose token endpoint can expire tokens
        self.people: dict[str, list[Any]] = snapshot["people"]
        self.dissenting: dict[str, set[str]] = snapshot["dissenting"]
        self.shared: list[Any] = snapshot["shared"]
        self.latency_ms: float = snapshot["latency_ms"]
        self.oidc_lifetime_s: float | None = snapshot["oidc_lifetime_s"]
        self.summary: str = snapshot["summary"]
        #: told (wall seconds, this thread's CPU seconds) of each lever pulled in the supervising process: the
        #: day's GUI thread waits for the answer, which is the soak's time, not the window's (the stall meter
        #: leaves it out)
        self.left_out: Callable[[float, float], None] | None = None

    # the levers: overridden
    def set_mode(self, practice_id: str, mode: str | None) -> None:
        raise NotImplementedError

    def reset_faults(self) -> None:
        raise NotImplementedError

    def expire_tokens(self, practice_id: str) -> None:
        raise NotImplementedError

    def tokens_issued(self, practice_id: str) -> int:
        raise NotImplementedError

    def oidc_refreshes(self) -> int:
        raise NotImplementedError

    def oidc_errors(self) -> list[str]:
        raise NotImplementedError


def snapshot_of(network: Any) -> dict[str, Any]:
    provider = network.identity
    lifetime = getattr(provider, "access_token_lifetime_s", None)
    return {
        "practices": network.practices,
        "identity_settings": provider.settings,
        "names": {s.spec.id: s.practice.name for s in network.servers},
        "gp_connect_ids": [s.spec.id for s in network.servers if s.gpconnect is not None],
        "token_ids": [s.spec.id for s in network.servers if hasattr(s.auth, "expire_tokens")],
        "people": {s.spec.id: list(s.population) for s in network.servers},
        "dissenting": {s.spec.id: set(s.gpconnect.dissenting) if s.gpconnect is not None else set()
                       for s in network.servers},
        "shared": list(network.shared_patients),
        "latency_ms": float(network.servers[0].faults.latency_ms),
        "oidc_lifetime_s": float(lifetime) if lifetime is not None and hasattr(provider, "issued") else None,
        "summary": network.summary(),
    }


class LocalControl(DemoControl):
    def __init__(self, network: Any) -> None:
        super().__init__(snapshot_of(network))
        self.network = network

    def set_mode(self, practice_id: str, mode: str | None) -> None:
        self.network.server(practice_id).faults.mode = mode

    def reset_faults(self) -> None:
        self.network.reset_faults()
        self.network.set_latency(self.latency_ms)

    def expire_tokens(self, practice_id: str) -> None:
        self.network.server(practice_id).auth.expire_tokens()

    def tokens_issued(self, practice_id: str) -> int:
        return int(self.network.server(practice_id).auth.issued)

    def oidc_refreshes(self) -> int:
        return int(self.network.identity.issued["refresh_token"])

    def oidc_errors(self) -> list[str]:
        return list(self.network.identity.token_errors[-3:])


class RemoteControl(DemoControl):
    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self._lock = threading.Lock()
        self.left_out = None
        super().__init__(self._call("snapshot"))

    def _call(self, name: str, *args: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        with self._lock:
            self.connection.send((name, args))
            ok, value = self.connection.recv()
        if self.left_out is not None:
            self.left_out(time.perf_counter() - wall, time.thread_time() - cpu)
        if not ok:
            raise SoakError(f"the supervising process could not {name}{args}: {value}")
        return value

    def set_mode(self, practice_id: str, mode: str | None) -> None:
        self._call("set_mode", practice_id, mode)

    def reset_faults(self) -> None:
        self._call("reset_faults")

    def expire_tokens(self, practice_id: str) -> None:
        self._call("expire_tokens", practice_id)

    def tokens_issued(self, practice_id: str) -> int:
        return int(self._call("tokens_issued", practice_id))

    def oidc_refreshes(self) -> int:
        return int(self._call("oidc_refreshes"))

    def oidc_errors(self) -> list[str]:
        return list(self._call("oidc_errors"))


def serve_control(listener: Any, control: LocalControl) -> None:
    """The supervising process's side: answer one child's requests until it hangs up."""
    try:
        connection = listener.accept()
    except OSError:
        return
    with connection:
        while True:
            try:
                name, args = connection.recv()
            except (EOFError, OSError):
                return
            try:
                value = snapshot_of(control.network) if name == "snapshot" else getattr(control, name)(*args)
                connection.send((True, value))
            except Exception as exc:  # noqa: BLE001 - said to the child, which counts it as an error
                connection.send((False, f"{type(exc).__name__}: {exc}"))


# --- the day --------------------------------------------------------------------------------------------

@dataclass
class SoakResult:
    cycles: int = 0
    errors: list[SoakErrorRecord] = field(default_factory=list)
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    stall_ms: float = 0.0
    sign_in_stall_ms: float = 0.0
    stall_by_step: dict[str, float] = field(default_factory=dict)
    top_stalls: list[tuple[float, str, float]] = field(default_factory=list)  # ms, step, the GUI thread's CPU ms
    records_opened: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"soak: {self.cycles} cycles, {len(self.errors)} errors, RSS start {self.rss_start_mb:.0f} MB "
                f"end {self.rss_end_mb:.0f} MB, longest GUI stall {self.stall_ms:.0f} ms")


def rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


class Day:
    """One signed-in window and the demo network behind it, driven cycle by cycle."""

    def __init__(self, demo: DemoControl, window: Any, errors: ErrorLog, rng: random.Random, meter: Any,
                 *, stuck_s: float = STUCK_S, out: TextIO | None = None,
                 on_step: Callable[[str], None] | None = None) -> None:
        self.demo = demo
        self.win = window
        self.errors = errors
        self.rng = rng
        self.meter = meter
        self.stuck_s = stuck_s
        self.out = out or sys.stdout
        self.on_step = on_step
        self.bot = Driver()
        self.bot.after_input = self.turn
        self.opened = 0
        self.notes: list[str] = []
        self.gp_connect_ids = demo.gp_connect_ids
        self.last_opened: Any = None  # the PatientSummary most recently opened

    # -- running ---------------------------------------------------------------------------------------

    def cycle(self, number: int) -> None:
        steps: list[tuple[str, Callable[[], None]]] = [
            ("search by name", self.search_by_name),
            ("search by NHS number", self.search_by_nhs_number),
            ("search by date of birth", self.search_by_birth_date),
        ]
        if number % DOWN_EVERY == DOWN_AT:
            steps.append(("practice down and back", self.practice_down_and_back))
        if number % TOKENS_EVERY == TOKENS_AT:
            steps.append(("tokens expire and renew", self.tokens_expire_and_renew))
        steps += [
            ("split, move and close tabs", self.arrange_tabs),
            ("access history", self.access_history),
            ("lock and unlock", self.lock_and_unlock),
            ("no stuck record", self.check_no_stuck_record),
        ]
        for name, step in steps:
            self.errors.where = f"cycle {number}, {name}"
            if self.on_step is not None:
                self.on_step(self.errors.where)
            self.meter.set_phase(name)
            self.meter.last = time.perf_counter()  # the soak's own bookkeeping above is not the window's stall
            try:
                step()
                self.turn()  # what the step left for the event loop counts as the step's
            except Exception as exc:  # noqa: BLE001 - every failure is an error of the run, and the day goes on
                self.errors.add_exception("step failed", exc)
                self.recover()

    def turn(self) -> None:
        """Let the event loop run until the stall meter has ticked since now: whatever the last action left
        to do (layout, paint, queued calls) is done and measured before the next action."""
        since = time.perf_counter()
        self.bot.wait_until(lambda: self.meter.last >= since, STEP_TIMEOUT_S, "the GUI thread to come round")

    def recover(self) -> None:
        """Back to a usable window after a failed step: faults cleared, unlocked, history closed."""
        with contextlib.suppress(Exception):
            self.demo.reset_faults()
        lock = getattr(self.win, "lock", None)
        with contextlib.suppress(Exception):
            if lock is not None and lock.locked:
                with self.bot.waitSignal(lock.locked_changed, timeout=int(STEP_TIMEOUT_S * 1000)):
                    lock.page.button.click()
        with contextlib.suppress(Exception):
            if self.win.access_history is not None:
                self.win.access_history.close()
        with contextlib.suppress(Exception):
            self.activate()

    def activate(self) -> None:
        """The main window active, as a person's next keystroke needs it."""
        from PySide6.QtWidgets import QApplication

        self.win.activateWindow()
        self.win.raise_()
        self.bot.wait_until(lambda: QApplication.activeWindow() is self.win, STEP_TIMEOUT_S,
                            "the main window to become active")

    # -- searching and opening -------------------------------------------------------------------------

    def search(self, text: str) -> Any:
        """Ctrl+F, type, Enter (tests/ui/test_window.search); the outcome. QTest types ASCII only (anything
        else aborts in qasciikey.cpp), so a name such as "Zoë" is put in the box as a paste would."""
        from PySide6.QtCore import Qt

        from tests.ui.test_window import search

        self.activate()
        if text.isascii():
            outcome = search(self.bot, self.win, text)
        else:
            box = self.win.search_panel.box
            self.bot.keyClick(self.win, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
            box.setText(text)
            with self.bot.waitSignal(self.win.search_finished, timeout=int(STEP_TIMEOUT_S * 1000),
                                     what=f"the search {text!r} to finish") as blocker:
                self.bot.keyClick(box, Qt.Key.Key_Return)
            outcome = blocker.args[0] if blocker.args else None
        if outcome is None:
            raise SoakError(f"the search {text!r} failed: {self.win.search_panel.count_line.text()}")
        return outcome

    def expect_found(self, outcome: Any, text: str, wanted: list[tuple[str, Any]],
                     failing: frozenset[str] = frozenset()) -> list[Any]:
        """The PatientSummary of each (practice id, demo patient) wanted, from the outcome; no practice
        failed but those in `failing`. A GP Connect practice's local id is the NHS number."""
        failed = {r.practice_id: r.error for r in outcome.results if r.error}
        unexpected = {pid: why for pid, why in failed.items() if pid not in failing}
        if unexpected:
            first = next(iter(unexpected.values()))
            raise SoakError(f"the search {text!r}: {len(unexpected)} practices failed ({', '.join(unexpected)}); "
                            f"the first said: {first}")
        found = {(p.practice_id, p.local_id): p for p in outcome.patients}
        found.update({(p.practice_id, p.nhs_number): p for p in outcome.patients
                      if p.nhs_number and p.practice_id in self.gp_connect_ids})
        keys = [(pid, person.nhs_number if pid in self.gp_connect_ids else person.local_id) for pid, person in wanted]
        missing = [k for k in keys if k not in found]
        if missing:
            raise SoakError(f"the search {text!r} did not list {missing} ({len(outcome.patients)} results)")
        return [found[k] for k in keys]

    def open(self, patient: Any, *, expect: str = "loaded") -> Any:
        """Select the patient's row and press Enter (tests/ui/test_window.select_row); wait until the record
        is on screen or has failed. A record still loading or being built after stuck_s is stuck."""
        import shiboken6
        from PySide6.QtCore import Qt

        from tests.ui.test_window import select_row

        key = (patient.practice_id, patient.local_id)
        tree = select_row(self.win, patient)
        self.bot.keyClick(tree, Qt.Key.Key_Return)
        view = self.win.records.find_view(key)
        if view is None:
            raise SoakError(f"Enter on {key} in the results opened no record tab")

        def settled() -> bool:
            return not shiboken6.isValid(view) or (view.state != "loading" and not view.building)

        self.bot.wait_until(settled, self.stuck_s, lambda: f"record {key} at {view.practice.name} stuck: state "
                            f"'{view.state}'{', still being built' if view.building else ''}")
        if not shiboken6.isValid(view):
            raise SoakError(f"record {key}: its tab was deleted while it opened")
        self.opened += 1
        self.last_opened = patient
        if view.state != expect:
            raise SoakError(f"record {key} at {view.practice.name}: '{view.state}', expected '{expect}'"
                            + (f": {view.error}" if view.error else ""))
        if view.state == "loaded" and view.record is not None:
            failed = [f"{s.name}: {s.error}" for s in view.record.sections.values() if s.status == "failed"]
            if failed:
                raise SoakError(f"record {key} at {view.practice.name}: sections failed: {failed}")
        return view

    def _person(self, practice_id: str, with_nhs: bool = True) -> Any:
        """A random patient of the practice's demo population (with an NHS number, unless told)."""
        people = self.demo.people[practice_id]
        dissenting = self.demo.dissenting[practice_id]
        while True:  # not one who dissents from GP Connect sharing: their record is refused, by design
            person = self.rng.choice(people)
            if (person.nhs_number or not with_nhs) and person.nhs_number not in dissenting:
                return person

    def name_query(self, person: Any) -> str:
        """Family name first, as the search box wants it; "Da Silva, Kevin" where the family name has a space."""
        if not person.given:
            return str(person.family)
        comma = " " in person.family or self.rng.random() < 0.3
        return f"{person.family}{',' if comma else ''} {person.given[0]}"

    def search_by_name(self) -> None:
        pid = self.rng.choice(self.demo.fhir_ids)  # GP Connect has no search by name
        person = self._person(pid, with_nhs=False)
        text = self.name_query(person)
        outcome = self.search(text)
        [patient] = self.expect_found(outcome, text, [(pid, person)])
        self.open(patient)

    def search_by_nhs_number(self) -> None:
        """A patient registered at two practices (one of them GP Connect, in the demo) half the time, else
        a GP Connect practice's patient: both registrations are opened."""
        from app.core.nhs_number import format_nhs_number

        if self.rng.random() < 0.5 and self.demo.shared:
            shared = self.rng.choice(self.demo.shared)
            number = shared.nhs_number
            wanted = [(pid, self._patient(pid, lid)) for pid, lid in (shared.first, shared.second)]
        else:
            pid = self.rng.choice(sorted(self.demo.gp_connect_ids) or self.demo.fhir_ids)
            person = self._person(pid)
            number, wanted = person.nhs_number, [(pid, person)]
        text = format_nhs_number(number) if self.rng.random() < 0.5 else number
        outcome = self.search(text)
        for patient in self.expect_found(outcome, text, wanted):
            self.open(patient)

    def _patient(self, practice_id: str, local_id: str) -> Any:
        return next(p for p in self.demo.people[practice_id] if p.local_id == local_id)

    def search_by_birth_date(self) -> None:
        from app.core.display import format_date

        pid = self.rng.choice(self.demo.fhir_ids)
        person = self._person(pid, with_nhs=False)
        if person.birth_date is None:
            return
        text = format_date(person.birth_date) if self.rng.random() < 0.5 else person.birth_date.strftime("%d/%m/%Y")
        outcome = self.search(text)
        [patient] = self.expect_found(outcome, text, [(pid, person)])
        self.open(patient)

    # -- tabs ------------------------------------------------------------------------------------------

    def arrange_tabs(self) -> None:
        """Split the view (Ctrl+\\), move a tab to the other pane (Ctrl+Shift+M), step through tabs
        (Ctrl+PgDown), and close tabs (Ctrl+W) until at most MAX_TABS are open; now and then all of them.

        Each action is its own phase of the stall meter ("tabs: split", ...), and picking the tab to act on
        (a click on it) is an input of its own, with its own turn of the event loop, as a person's click and
        their next keystroke are."""
        from PySide6.QtCore import Qt

        records = self.win.records
        ctrl = Qt.KeyboardModifier.ControlModifier
        self.activate()
        views = records.views()
        if len(views) >= 2 and len(records.panes) == 1:
            self.pick_tab(self.rng.choice(views))
            before = len(records.panes)
            self.tab_phase("split")
            self.bot.keyClick(self.win, Qt.Key.Key_Backslash, ctrl)
            if len(records.panes) != before + 1:
                raise SoakError(f"Ctrl+\\ with {len(views)} records in one pane: {len(records.panes)} panes")
        if len(records.panes) >= 2:
            pane = max(records.panes, key=lambda p: p.count())
            if pane.count() >= 2:
                view = self.rng.choice(pane.views())
                self.pick_tab(view)
                self.tab_phase("move")
                self.bot.keyClick(self.win, Qt.Key.Key_M, ctrl | Qt.KeyboardModifier.ShiftModifier)
                if records.pane_of(view) is pane:
                    raise SoakError("Ctrl+Shift+M left the record tab in its pane")
        self.tab_phase("next tab")
        for _ in range(self.rng.randint(0, 3)):
            self.bot.keyClick(self.win, Qt.Key.Key_PageDown, ctrl)
        close_all = self.rng.random() < 0.15
        while records.views() and (close_all or len(records.views()) > MAX_TABS):
            view = self.rng.choice(records.views())
            self.pick_tab(view)
            count = len(records.views())
            self.tab_phase("close")
            self.bot.keyClick(self.win, Qt.Key.Key_W, ctrl)
            if len(records.views()) != count - 1 or view in records.views():
                raise SoakError(f"Ctrl+W on {view.title()} did not close it")
        if not records.views() and records.currentWidget() is not records.hint:
            raise SoakError("every record is closed but the hint is not shown")

    def tab_phase(self, action: str) -> None:
        """Stalls from here on count as this tab action's (until the next one)."""
        self.meter.set_phase(f"tabs: {action}")

    def pick_tab(self, view: Any) -> None:
        """Bring a record's tab to the front, as a click on it does, and let the event loop turn after it."""
        self.tab_phase("pick a tab")
        self.win.records.focus_view(view)
        self.turn()

    # -- access history --------------------------------------------------------------------------------

    def access_history(self) -> None:
        """Ctrl+H, then filter to the last patient opened: their record opens are listed."""
        from PySide6.QtCore import Qt

        from tests.ui.test_access_history import ACTION, PATIENT, cells, show

        self.activate()
        first = self.win.access_history is None
        self.bot.keyClick(self.win, Qt.Key.Key_H, Qt.KeyboardModifier.ControlModifier)
        history = self.win.access_history
        if history is None:
            raise SoakError("Ctrl+H opened no access history")
        if first:  # it lists the newest entries as it opens
            self.bot.wait_until(lambda: history.model.rowCount() > 0, STEP_TIMEOUT_S,
                                lambda: f"the access history to list entries ({history.count_line.text()})")
        self.bot.wait_until(history.isVisible, STEP_TIMEOUT_S, "the access history window to show")
        patient = self.last_opened
        if patient is not None and patient.nhs_number:
            history.set_filters(patient=patient.nhs_number, action="read")
            rows = show(self.bot, history)
            reads = [r for r in range(history.model.rowCount()) if cells(history, r)[ACTION] == "Record opened"]
            if not rows or not reads:
                raise SoakError(f"the access history lists no record opens of the last patient opened "
                                f"({history.count_line.text()})")
            if any(not cells(history, r)[PATIENT].replace(" ", "").endswith(patient.nhs_number) for r in reads):
                raise SoakError("the access history, filtered to one patient, lists another")
            history.clear_filters()
        history.close()
        self.bot.wait_until(lambda: not history.isVisible(), STEP_TIMEOUT_S, "the access history to close")

    # -- lock ------------------------------------------------------------------------------------------

    def lock_and_unlock(self) -> None:
        """Ctrl+L: the lock page, no record on screen; Sign in again: the same records back."""
        from PySide6.QtCore import Qt

        lock = self.win.lock
        views = self.win.records.views()
        self.activate()
        self.bot.keyClick(self.win, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
        if not lock.locked or self.win.pages.currentWidget() is not lock.page:
            # Said, and then locked as the idle timer locks it, so that the rest of the day still runs.
            self.errors.add("step failed", "Ctrl+L (Lock now): " + (
                "the lock says it is locked, yet the window still shows its records" if lock.locked
                else "the window did not lock") + "; locking it as the idle timer does, to go on")
            if lock.locked:
                lock.policy.unlocked_by_sign_in()
            lock.lock()
        if self.win.pages.currentWidget() is not lock.page or any(v.isVisible() for v in views):
            raise SoakError("locked, but the lock page is not what the window shows")
        with self.bot.waitSignal(lock.locked_changed, timeout=int(STEP_TIMEOUT_S * 1000),
                                 check_params_cb=lambda locked: locked is False,
                                 what=lambda: f"signing in again to unlock ({lock.page.detail.text()})"):
            self.bot.mouseClick(lock.page.button, Qt.MouseButton.LeftButton)
        if self.win.records.views() != views:
            raise SoakError("after unlocking, the open records are not the ones open before")

    # -- a practice goes down and comes back -----------------------------------------------------------

    def practice_down_and_back(self) -> None:
        """Fault mode "down" at one practice (app/demo/faults.py): its search answer and its record fail,
        naming it, while the others answer; restored, it comes back (Retry in the practices panel when the
        window marked it failed, or on its own) and Retry on the record opens it."""
        import shiboken6
        from PySide6.QtCore import Qt

        from app.core.nhs_number import format_nhs_number
        from app.core.sessions import PracticeStatus

        pid = self.rng.choice(self.demo.ids)
        name = self.demo.names[pid]
        person = self._person(pid)
        number = format_nhs_number(person.nhs_number)
        [patient] = self.expect_found(self.search(number), number, [(pid, person)])
        key = (patient.practice_id, patient.local_id)
        view = self.win.records.find_view(key)
        if view is not None:  # the clinician closes it first, so it is opened anew while down
            self.win.records.close_view(view)
            self.turn()
        self.demo.set_mode(pid, "down")
        try:
            view = self.open(patient, expect="error")  # from the results listed while it was up
            if name not in (view.error or ""):
                raise SoakError(f"the record from {name}, which is down, failed without naming it: {view.error}")
            outcome = self.search(number)
            failed = {r.practice_id: r.error for r in outcome.results if r.error}
            if pid not in failed:
                raise SoakError(f"{name} is down, but the search did not say it failed")
            self.expect_found(outcome, number, [], failing=frozenset({pid}))
            problems = self.win.search_panel.problems_label.text()
            if name not in problems:
                raise SoakError(f"{name} is down, but the search's problems line does not name it: {problems!r}")
        finally:
            self.demo.set_mode(pid, None)
        # back up: the practice may have been marked failed meanwhile
        row = self.win.practices_panel.rows[pid]
        if row.retry_button.isEnabled():
            with self.bot.waitSignal(self.win.practice_state_changed, timeout=int(STEP_TIMEOUT_S * 1000),
                                     check_params_cb=lambda s: s.practice.id == pid
                                     and s.status is PracticeStatus.ONLINE, what=f"{name} to come back online"):
                self.bot.mouseClick(row.retry_button, Qt.MouseButton.LeftButton)
        state = self.win.core.sessions.state(pid)
        if state.status is not PracticeStatus.ONLINE:
            self.bot.wait_until(lambda: self.win.core.sessions.state(pid).status is PracticeStatus.ONLINE,
                                STEP_TIMEOUT_S, f"{name} to come back online ({state.status}: {state.detail})")
        self.win.records.focus_view(view)  # a click on its tab
        self.turn()
        self.bot.mouseClick(view.retry_button, Qt.MouseButton.LeftButton)
        self.bot.wait_until(lambda: not shiboken6.isValid(view) or (view.state != "loading" and not view.building),
                            self.stuck_s, lambda: f"record {key} at {name}, retried, stuck in '{view.state}'")
        if view.state != "loaded":
            raise SoakError(f"{name} is back, but Retry on its record gave '{view.state}': {view.error}")
        self.expect_found(self.search(number), number, [(pid, person)])

    # -- tokens ----------------------------------------------------------------------------------------

    def tokens_expire_and_renew(self) -> None:
        """Every access token the practices' token endpoints issued expires now (the demo token endpoint's
        state: `expire_tokens()`); the next record from each such practice must open without the user
        doing anything, on a token fetched afresh. Then the user's own sign-in: see expire_user_sign_in."""
        from app.core.nhs_number import format_nhs_number

        for pid in self.demo.token_ids:
            issued = self.demo.tokens_issued(pid)
            self.demo.expire_tokens(pid)
            person = self._person(pid)
            number = format_nhs_number(person.nhs_number)
            [patient] = self.expect_found(self.search(number), number, [(pid, person)])
            view = self.win.records.find_view((patient.practice_id, patient.local_id))
            if view is not None:  # closed first, so that it is fetched with the expired token
                self.win.records.close_view(view)
                self.turn()
            self.open(patient)
            if self.demo.tokens_issued(pid) <= issued:
                raise SoakError(f"{self.demo.names[pid]}: tokens expired, yet no new token was fetched")
        self.renew_user_sign_in()

    def renew_user_sign_in(self) -> None:
        """The user's own OpenID Connect sign-in: the demo provider issues tokens that last
        USER_TOKEN_LIFETIME_S (start_identity_provider), so they run out during every few cycles; the core
        must renew them with the refresh token, without a browser, before they do. Waits (with a deadline)
        for the provider to grant a refresh, then checks the user is still signed in and a search works.
        Where the provider or Identity cannot do that (no lifetimes, no Identity.renew), says so once."""
        identity = self.win.core.identity if self.win.core is not None else None
        lifetime = self.demo.oidc_lifetime_s
        if identity is None or not hasattr(identity, "renew") or lifetime is None or lifetime > USER_TOKEN_LIFETIME_S:
            self.note("user sign-in renewal: not driven (the demo provider has no short token lifetimes, or "
                      "app/core/identity.py no renew()); practice access tokens are expired and renewed")
            return
        before = self.demo.oidc_refreshes()
        self.bot.wait_until(lambda: self.demo.oidc_refreshes() > before, lifetime * 2 + STEP_TIMEOUT_S,
                            lambda: f"the core to renew the user's {lifetime:g}-second sign-in with its refresh "
                                    f"token (signed in: {identity.signed_in}, needs sign-in: "
                                    f"{getattr(identity, 'needs_sign_in', '?')}, provider refused: "
                                    f"{self.demo.oidc_errors()})")
        self.bot.wait_until(lambda: identity.signed_in or getattr(identity, "needs_sign_in", False), STEP_TIMEOUT_S,
                            "the renewed sign-in to settle")
        if not identity.signed_in:
            raise SoakError(f"the user's sign-in lapsed instead of being renewed ({self.demo.oidc_errors()})")
        pid = self.rng.choice(self.demo.fhir_ids)
        person = self._person(pid, with_nhs=False)
        text = self.name_query(person)
        self.expect_found(self.search(text), text, [(pid, person)])

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)
            self.out.write(f"  note: {text}\n")

    # -- stuck records ---------------------------------------------------------------------------------

    def check_no_stuck_record(self) -> None:
        stuck = [f"{v.key} at {v.practice.name}: '{v.state}'" + (" (being built)" if v.building else "")
                 for v in self.win.records.views() if v.state == "loading" or v.building]
        if stuck:
            raise SoakError(f"records still loading at the end of the cycle: {stuck}")


# --- one run: the window in this process ----------------------------------------------------------------

def run_soak(demo: DemoControl, cycles: int, seed: int, *, stuck_s: float = STUCK_S, out: TextIO | None = None,
             on_progress: Callable[[SoakResult, str], None] | None = None,
             max_errors: int = MAX_ERRORS, settle: bool = False) -> SoakResult:
    """Build the window (identity through the demo OpenID provider), sign in, run `cycles` cycles of the
    day, close. Used by `main` (in a child process) and by tests/ui/test_soak_short.py.

    With `settle`, the heap is settled before the window is shown, as `mosaic` (app.ui.app.run_window) and
    bench_gui do: only in a process that builds one window (the soak's child), never in the tests' process."""
    import gc

    from app.demo.oidc_provider import demo_browser
    from app.ui.app import build_window

    out = out or sys.stdout
    errors = ErrorLog(out)
    result = SoakResult()
    rng = random.Random(seed)
    started = time.perf_counter()

    def progress(where: str) -> None:
        if on_progress is not None:
            result.errors = errors.items
            on_progress(result, where)

    with errors.hooks():
        meter = common.stall_meter(TICK_MS, STALL_GOAL_MS)
        meter.start()
        sampler = (common.StallSampler(meter, over_ms=float(os.environ.get("MOSAIC_BENCH_WHY_OVER", 25)))
                   if os.environ.get("MOSAIC_BENCH_WHY") == "1" else None)
        if sampler is not None and sys.platform == "linux":
            meter.watch_scheduler(other_pid=os.getppid())  # the supervising process serves the practices
        meter.set_phase("sign in")
        errors.where = "sign in"
        progress(errors.where)
        window, bridge = build_window(demo.practices, identity=demo.identity_settings, open_url=demo_browser)
        if sampler is not None:
            name_slow_core_callbacks(out)
        if settle:
            from app.ui.app import settle_heap

            settle_heap(window)
        day: Day | None = None
        try:
            driver = Driver()
            with driver.waitSignal(window.sign_in_finished, timeout=60_000, what="sign-in to every practice") as signed:
                window.show()
            states = signed.args[0] if signed.args else []
            offline = [f"{s.practice.name}: {s.status} {s.detail}" for s in states if s.status != "online"]
            if offline or not states:
                errors.add("sign-in", f"not every practice is online: {offline or 'no practice states'} "
                                      f"(the status bar says: {window.statusBar().currentMessage()!r})")
            identity = window.core.identity if window.core is not None else None
            user = identity.user if identity is not None else None
            if user is None:
                errors.add("sign-in", "nobody is signed in after the OpenID Connect sign-in")
            result.sign_in_stall_ms = meter.longest()
            meter.worst.clear()
            meter.top.clear()
            meter.top_cpu.clear()
            gc.collect()
            result.rss_start_mb = rss_mb()
            meter.last = time.perf_counter()  # the soak's own collection above is not the window's stall
            out.write(f"signed in as {user.display_name if user else '?'}: "
                      f"{sum(s.status == 'online' for s in states)} of {len(states)} practices online; "
                      f"RSS {result.rss_start_mb:.0f} MB\n")
            demo.left_out = meter.leave_out  # waiting for the supervising process is not the window's stall
            day = Day(demo, window, errors, rng, meter, stuck_s=stuck_s, out=out, on_step=progress)
            for number in range(1, cycles + 1):
                t0 = time.perf_counter()
                before = len(errors.items)
                day.cycle(number)
                result.cycles = number
                result.records_opened = day.opened
                result.rss_end_mb = rss_mb()
                result.stall_ms = meter.longest()
                out.write(f"cycle {number}/{cycles}: {time.perf_counter() - t0:.1f} s, "
                          f"{len(window.records.views())} records open, {len(errors.items) - before} errors, "
                          f"RSS {result.rss_end_mb:.0f} MB, longest stall so far {result.stall_ms:.0f} ms\n")
                out.flush()
                progress(f"cycle {number} done")
                if max_errors and len(errors.items) >= max_errors:
                    errors.where = f"after cycle {number}"
                    errors.add("stopped", f"{len(errors.items)} errors: stopping early")
                    break
        finally:
            errors.where = "closing"
            meter.stop()
            window.close()
            bridge.shutdown(window.core)
        gc.collect()
        result.rss_end_mb = rss_mb()
        result.stall_ms = meter.longest()
        result.stall_by_step = dict(meter.worst)
        result.top_stalls = sorted(meter.top_cpu, reverse=True)[:10]
        if os.environ.get("MOSAIC_BENCH_SPANS"):  # diagnostics: when each stall was, to match a `perf record -k 1`
            Path(os.environ["MOSAIC_BENCH_SPANS"]).write_text(json.dumps(meter.spans), encoding="utf-8")
        if sampler is not None:
            out.write("why the GUI thread stalled (MOSAIC_BENCH_WHY=1):\n" + sampler.report() + "\n")
            for ms_, phase, said in sorted(meter.sched_top, reverse=True)[:15]:
                out.write(f"  {ms_:.0f} ms [{phase}]: {said}\n")
        result.notes = day.notes if day is not None else []
    result.errors = errors.items
    result.seconds = time.perf_counter() - started
    return result


# --- the demo network ----------------------------------------------------------------------------------

def name_slow_core_callbacks(out: TextIO, over_s: float = 0.012) -> None:
    """Diagnostics (MOSAIC_BENCH_WHY=1): every callback or task step of the core's loop that used more than
    `over_s` of its thread's CPU (holding the interpreter lock: the GUI thread waits that long for it) is
    written to `out` with what it was and where its task stands now."""
    from app.ui import gui_first

    def timed(gate: Any, callback: Callable[..., object], *args: Any) -> None:
        gate.wait_turn()
        began = time.thread_time()
        callback(*args)
        used = time.thread_time() - began
        if used > over_s:
            task = getattr(callback, "__self__", None)
            coro = task.get_coro() if isinstance(task, asyncio.Task) else None
            where = ""
            if coro is not None:
                frames = []
                while coro is not None and getattr(coro, "cr_frame", None) is not None:
                    frames.append(f"{coro.cr_code.co_qualname}:{coro.cr_frame.f_lineno}")
                    coro = coro.cr_await
                where = " > ".join(frames)
            out.write(f"core loop: {used * 1000:.0f} ms CPU in {callback!r:.160} {where}\n")

    gui_first._after_the_gui = timed  # type: ignore[assignment]


def start_network(practices: int = PRACTICES, patients: int = 2000, latency_ms: float = common.LATENCY_MS) -> Any:
    """The demo practices as `mosaic demo` makes them (GP Connect among them, one on SMART Backend
    Services) and a demo OpenID provider whose tokens last USER_TOKEN_LIFETIME_S where it allows that."""
    from app.demo.network import DemoNetwork

    network = DemoNetwork.start(practices=practices, patients=patients, latency_ms=latency_ms,
                                gp_connect=tuple(i for i in GP_CONNECT if i < practices), smart_backend=True)
    try:
        network.identity = start_identity_provider()
    except BaseException:
        network.stop()
        raise
    return network


def start_identity_provider() -> Any:
    import inspect

    from app.demo.oidc_provider import DemoOidcProvider

    accepted = inspect.signature(DemoOidcProvider).parameters
    short = {name: USER_TOKEN_LIFETIME_S for name in ("access_token_lifetime_s", "id_token_lifetime_s")
             if name in accepted}
    return DemoOidcProvider.start(**short)


# --- the child: one run, status written after every step ------------------------------------------------

def child(args: Any) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    faulthandler.enable(all_threads=True)
    common.isolate(keep_secrets=True)  # the parent put the practices' secrets in our environment
    from app.core.logs import setup_logging

    setup_logging()  # as `mosaic` does: log lines to MOSAIC_HOME/logs (ERRORs are also counted, see hooks)
    from app.ui.app import ensure_application

    ensure_application()
    status_path: Path = args.status

    def write_status(result: SoakResult, where: str, finished: bool = False) -> None:
        data = asdict(result)
        data.update(where=where, finished=finished)
        tmp = status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(status_path)

    from multiprocessing.connection import Client

    host, port = args.control.rsplit(":", 1)
    with Client((host, int(port)), authkey=bytes.fromhex(os.environ.pop(CONTROL_KEY_ENV))) as connection:
        demo = RemoteControl(connection)
        result = run_soak(demo, args.cycles, args.seed, stuck_s=args.stuck_s, max_errors=args.max_errors,
                          on_progress=lambda r, where: write_status(r, where), settle=True)
    write_status(result, "finished", finished=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # Finalisation is not part of the day; skip it, as bench_gui does (PySide can abort there).
    os._exit(1 if result.errors else 0)


# --- the parent: run the child, report, print the last line ---------------------------------------------

def report(data: dict[str, Any], seconds: float) -> None:
    cycles = data.get("cycles", 0)
    print(f"== {NAME}: {cycles} cycles in {seconds:.0f} s"
          + (f" ({seconds / cycles:.2f} s per cycle)" if cycles else "") + f", {data.get('records_opened', 0)} "
          f"records opened", flush=True)
    print(f"  longest GUI stall while signing in (first show included): {data.get('sign_in_stall_ms', 0):.0f} ms")
    by_step = data.get("stall_by_step") or {}
    if by_step:
        print("  longest GUI stall by step: " + ", ".join(f"{k} {v:.0f} ms" for k, v in
                                                         sorted(by_step.items(), key=lambda kv: -kv[1])))
    top = data.get("top_stalls") or []
    if top:
        print("  longest stalls (the GUI thread's own CPU in each): "
              + ", ".join(f"{s:.0f} ms ({p}; {cpu:.0f} ms CPU)" for s, p, cpu in top))
    growth = data.get("rss_end_mb", 0) - data.get("rss_start_mb", 0)
    print(f"  RSS growth {growth:+.0f} MB (goal <= {RSS_GROWTH_GOAL_MB} MB); longest stall "
          f"{data.get('stall_ms', 0):.0f} ms (goal <= {STALL_GOAL_MS} ms)")
    for note in data.get("notes") or []:
        print(f"  note: {note}")
    errors = data.get("errors") or []
    if errors:
        kinds: dict[str, int] = {}
        for e in errors:
            first = e["text"].strip().splitlines()[-1] if e["text"].strip() else ""
            label = f"{e['kind']}: {first[:160]}"
            kinds[label] = kinds.get(label, 0) + 1
        print(f"  errors by kind ({len(errors)}):")
        for label, count in sorted(kinds.items(), key=lambda kv: -kv[1]):
            print(f"    {count} x {label}")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--cycles", type=int, default=DEFAULT_CYCLES, help=f"cycles of the day (default {DEFAULT_CYCLES})")
    p.add_argument("--seed", type=int, help="rerun a run: the seed it printed at the start")
    p.add_argument("--practices", type=int, default=PRACTICES)
    p.add_argument("--patients", type=int, default=2000, help="patients per demo practice (default 2000)")
    p.add_argument("--latency-ms", type=float, default=common.LATENCY_MS,
                   help=f"added to every demo reply (default {common.LATENCY_MS})")
    p.add_argument("--stuck-s", type=float, default=STUCK_S,
                   help=f"a record loading longer than this is stuck (default {STUCK_S:g})")
    p.add_argument("--max-errors", type=int, default=MAX_ERRORS,
                   help=f"stop after this many errors (default {MAX_ERRORS}; 0: never)")
    p.add_argument("--child", action="store_true", help=_hidden())
    p.add_argument("--status", type=Path, help=_hidden())
    p.add_argument("--control", help=_hidden())
    args = p.parse_args(argv)
    if args.cycles < 1:
        p.error("--cycles must be at least 1")
    if args.child:
        return child(args)

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    print(f"soak seed {seed} (rerun with --seed {seed})", flush=True)
    home = common.isolate()
    status = home / "soak-status.json"
    print(f"starting {args.practices} demo practices in this process ({args.patients} patients each, "
          f"{args.latency_ms:g} ms per reply; GP Connect, SMART Backend Services, demo OpenID provider with "
          f"{USER_TOKEN_LIFETIME_S:g}-second tokens); the window runs in a child process", flush=True)
    from multiprocessing.connection import Listener

    network = start_network(args.practices, args.patients, args.latency_ms)
    key = os.urandom(16)
    try:
        print(network.summary(), flush=True)
        with Listener(("127.0.0.1", 0), authkey=key) as listener:
            host, port = listener.address
            threading.Thread(target=serve_control, args=(listener, LocalControl(network)), name="soak-control",
                             daemon=True).start()
            cmd = [common.python(), "-m", "tests.perf.soak_window", "--child", "--status", str(status),
                   "--control", f"{host}:{port}", "--cycles", str(args.cycles), "--seed", str(seed),
                   "--stuck-s", str(args.stuck_s), "--max-errors", str(args.max_errors)]
            # the window's keyring (the audit journal's key): the tests' file keyring in the child's own
            # throw-away folder, never the developer's real one
            env = common.child_env(**common.secret_env(network), **{CONTROL_KEY_ENV: key.hex()},
                                   PYTHON_KEYRING_BACKEND="tests.keyring_backend.FileKeyring")
            started = time.perf_counter()
            code = subprocess.run(cmd, cwd=common.REPO, env=env).returncode
            seconds = time.perf_counter() - started
    finally:
        network.stop()
    try:
        data: dict[str, Any] = json.loads(status.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {"cycles": 0, "errors": [], "where": "start", "finished": False}
    errors = list(data.get("errors") or [])
    if not data.get("finished"):
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        text = f"the window's process ended ({how}) during {data.get('where', '?')}; its stack is above"
        print(f"soak error #{len(errors) + 1} [{data.get('where', '?')}] crash: {text}", flush=True)
        errors.append({"kind": "crash", "where": data.get("where", "?"), "text": text})
        data["errors"] = errors
    report(data, seconds)
    result = SoakResult(cycles=int(data.get("cycles", 0)), rss_start_mb=float(data.get("rss_start_mb", 0)),
                        rss_end_mb=float(data.get("rss_end_mb", 0)), stall_ms=float(data.get("stall_ms", 0)))
    result.errors = [SoakErrorRecord(e["kind"], e["where"], e["text"]) for e in errors]
    if args.json is not None:
        rep = common.Report(NAME)
        rep.add("Soak: cycles without error", f"{result.cycles - len(result.errors)} of {result.cycles}")
        rep.add("Soak: RSS growth", result.rss_end_mb - result.rss_start_mb, "MB", goal=f"≤ {RSS_GROWTH_GOAL_MB} MB",
                met=result.rss_end_mb - result.rss_start_mb <= RSS_GROWTH_GOAL_MB)
        rep.add("Soak: longest GUI stall", result.stall_ms, "ms", goal=f"≤ {STALL_GOAL_MS} ms",
                met=result.stall_ms <= STALL_GOAL_MS)
        rep.save(args.json)
    print(result.line(), flush=True)
    return 1 if result.errors or code != 0 else 0


def _hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
