"""MosaicCore: the one core that the window, the CLI and exports all go through.

Every path that shows record data calls `open_record`; later issues add the policy check and the
audit journal there, so no face of the app can bypass them.
"""

from __future__ import annotations

import asyncio
import logging

from adapters.base import AdapterError
from app.core import nhs_number
from app.core.model import PatientQuery, PatientRecord, Practice
from app.core.search import ResultListener, SearchOutcome, federated_search
from app.core.sessions import PracticeState, SessionManager, StateListener

log = logging.getLogger("mosaic.core")


class PatientNotFound(LookupError):
    pass


class MosaicCore:
    def __init__(self, practices: list[Practice], on_state: StateListener | None = None) -> None:
        self.sessions = SessionManager(practices, on_state=on_state)

    @property
    def practices(self) -> list[Practice]:
        return self.sessions.practices

    async def sign_in(self) -> list[PracticeState]:
        return await self.sessions.sign_in()

    async def retry(self, practice_id: str) -> PracticeState:
        return await self.sessions.connect(practice_id)

    async def search(self, query: PatientQuery, on_result: ResultListener | None = None) -> SearchOutcome:
        return await federated_search(self.sessions, query, on_result)

    async def resolve_patient(self, practice_id: str, patient: str) -> str:
        """A practice-local id from what the user gave: that id itself, or an NHS number."""
        if not nhs_number.looks_like_nhs_number(patient):
            return patient
        number = nhs_number.normalise(patient)
        if not nhs_number.is_valid(number):
            raise PatientNotFound(f"{patient} is not a valid NHS number (the check digit does not match).")
        adapter = self._adapter(practice_id)
        matches = await adapter.search(PatientQuery(nhs_number=number))
        if not matches:
            name = self.sessions.practice(practice_id).name
            raise PatientNotFound(f"No patient with NHS number {nhs_number.format_nhs_number(number)} "
                                  f"is registered at {name}.")
        return matches[0].local_id

    async def open_record(self, practice_id: str, local_id: str) -> PatientRecord:
        practice = self.sessions.practice(practice_id)
        adapter = self._adapter(practice_id)
        try:
            return await asyncio.wait_for(adapter.fetch_record(local_id), timeout=practice.timeout_s * 3 + 5)
        except TimeoutError:
            raise AdapterError(f"{practice.name} did not return the record in time.", "timeout") from None

    def _adapter(self, practice_id: str):
        adapter = self.sessions.online_adapter(practice_id)
        if adapter is None:
            state = self.sessions.state(practice_id)
            reason = state.detail or f"not signed in ({state.status})"
            raise AdapterError(f"{state.practice.name} is not available: {reason}", "network")
        return adapter

    async def close(self) -> None:
        await self.sessions.sign_out()
