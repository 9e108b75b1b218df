"""Retry one failed section of an open record, alone: through the core's normal path (`reload_section`: the
policy with the reason the record was opened with, the journal entry before anything is shown, the patient
checked), then that section replaces the failed one on screen and the rest of the record stays as it is."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.base import AdapterError
from app.core.model import SECTION_TITLES, Section, SectionName
from app.core.policy import PolicyError
from app.ui.record_view import RecordView

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow

STATUS_MS = 8000


def retry_section(window: MainWindow, view: RecordView, name: SectionName) -> None:
    """Ask the practice for section `name` of the record in `view` again."""
    core, record = window.core, view.record
    if core is None or record is None:
        return
    asked = record.sections.get(name)  # the failed section on screen: an answer for anything else is dropped
    grant = window.grant_of(view)
    practice_id, local_id = view.key
    title = SECTION_TITLES[name].lower()

    def done(section: Section) -> None:
        current = view.record
        if current is None or current.sections.get(name) is not asked:
            return  # the record was reloaded or closed meanwhile
        view.replace_section(section)
        if section.status == "failed":
            window.statusBar().showMessage(f"{view.practice.name} still could not send {title}.", STATUS_MS)
        else:
            window.statusBar().showMessage(f"Loaded {title} from {view.practice.name}.", STATUS_MS)

    def failed(exc: BaseException) -> None:
        view.section_retry_failed(name)
        if isinstance(exc, PolicyError):
            why = f"not allowed under the access policy: {exc.decision.why}"
        elif isinstance(exc, AdapterError):
            why = exc.message
        else:
            why = str(exc) or type(exc).__name__
        window.statusBar().showMessage(f"Could not load {title} again: {why}", STATUS_MS)

    window.statusBar().showMessage(f"Asking {view.practice.name} for {title} again…", STATUS_MS)
    window.bridge.submit(core.reload_section(practice_id, local_id, name, grant.purpose,
                                             break_glass=grant.break_glass), done, failed, receiver=view)
