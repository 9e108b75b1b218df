"""Open one patient (by NHS number) at every practice they are registered at, each through the normal path.

The patient is found by a search by NHS number (journaled per practice, the policy's practice rules applied),
then every registration found is opened with `MosaicCore.open_record`: the policy decided per practice, the
reason given once used for each, an intent and an outcome journal entry per practice committed before any of
it is handed back, and each record checked to be the patient asked for. A practice that cannot be searched or
opened, or that the policy refuses, is named with why; the others are still shown.

The research view has no part in this: it never finds a patient by NHS number (it finds pseudonymised patients
by study criteria) and a pseudonym is per practice, so there is nothing to put side by side without
re-identifying the patient. `open_all_practices` refuses it before anything is asked or journaled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from adapters.base import AdapterError
from app.core import nhs_number
from app.core.audit.errors import AuditError
from app.core.model import PatientQuery, PatientRecord, PatientSummary, Practice
from app.core.policy import PolicyDecision, PolicyError
from app.core.timeline import Timeline, build_timeline

if TYPE_CHECKING:
    from app.core.service import MosaicCore

log = logging.getLogger("mosaic.core")

OpenStatus = Literal["ok", "failed", "denied"]

RESEARCH_REFUSED = ("The research view does not open a patient at every practice: it never finds a patient by NHS "
                    "number, and a participant's pseudonym is per practice, so putting the practices side by side "
                    "would re-identify them. Open each pseudonymised record from a study criteria search.")


@dataclass(frozen=True)
class PracticeOpen:
    """One practice's part: the record (status "ok"), or why there is none ("failed", "denied")."""

    practice: Practice
    status: OpenStatus
    record: PatientRecord | None = None
    why: str | None = None
    needs: str | None = None  # "denied": what the policy wants ("reason", "break-glass") or "denied"
    local_id: str | None = None  # the patient's id at this practice, when a search found it


@dataclass(frozen=True)
class AllPractices:
    """The patient at every practice: who answered with what, and the practices where they are not registered."""

    nhs_number: str
    opened: tuple[PracticeOpen, ...]  # in the practice directory's order
    not_registered: tuple[Practice, ...] = ()

    @property
    def records(self) -> list[tuple[Practice, PatientRecord]]:
        return [(o.practice, o.record) for o in self.opened if o.status == "ok" and o.record is not None]

    @property
    def problems(self) -> list[PracticeOpen]:
        return [o for o in self.opened if o.status != "ok"]

    def timeline(self) -> Timeline:
        return build_timeline(self.records)

    @property
    def patient(self) -> PatientSummary | None:
        """The patient as the first practice that opened the record names them."""
        return next((r.patient for _, r in self.records), None)


def asked_for(number: str) -> str:
    """The NHS number as the core keys it, or PatientNotFound when it is not one."""
    from app.core.service import PatientNotFound

    normalised = nhs_number.normalise(number)
    if not nhs_number.is_valid(normalised):
        raise PatientNotFound(f"{number} is not a valid NHS number (the check digit does not match).")
    return normalised


def decision_for_all(core: MosaicCore, number: str) -> PolicyDecision:
    """What the policy wants before the patient is opened everywhere (no request): a reason when any practice the
    role covers wants one, with the reasons it offers. Break-glass is not asked here: a restricted registration
    is named in the outcome and opens alone, from the search results, by break-glass."""
    if core.research_view() is not None:
        return PolicyDecision("denied", why=RESEARCH_REFUSED)
    if core.policy is None:
        return PolicyDecision.allow()
    normalised = asked_for(number)
    decisions = [core.decide(p.id, normalised) for p in core.practices]
    reachable = [d for d in decisions if d.needs != "denied"]
    if not reachable:
        return decisions[0] if decisions else PolicyDecision("denied", why="No practice is configured.")
    wanting = [d for d in reachable if d.needs == "reason"]
    if wanting:
        reasons = tuple(dict.fromkeys(r for d in wanting for r in d.reasons))
        flags = tuple(dict.fromkeys(f for d in wanting for f in d.flags))
        return PolicyDecision("reason", reasons=reasons, flags=flags, why=wanting[0].why)
    return PolicyDecision.allow()


async def open_all_practices(core: MosaicCore, number: str, *, reason: str | None = None,
                             break_glass: bool = False) -> AllPractices:
    """The patient with this NHS number at every practice, each opened through `core.open_record`.

    Raises PolicyError for the research view (before anything is journaled or asked), PatientNotFound for an
    invalid NHS number or when every practice answered and none has the patient, and JournalError when nothing
    can be journaled. Everything else is per practice, in the answer."""
    if core.research_view() is not None:
        raise PolicyError(PolicyDecision("denied", why=RESEARCH_REFUSED))
    normalised = asked_for(number)
    outcome = await core.search(PatientQuery(nhs_number=normalised))
    by_id = {p.id: p for p in core.practices}
    found: list[tuple[Practice, PatientSummary]] = []
    early: dict[str, PracticeOpen] = {}
    absent: list[Practice] = []
    for result in outcome.results:
        practice = by_id[result.practice_id]
        if result.refused_by_policy:
            early[practice.id] = PracticeOpen(practice, "denied", why=result.note, needs="denied")
        elif result.error:
            early[practice.id] = PracticeOpen(practice, "failed", why=f"could not be searched: {result.error}")
        elif not result.queried:
            early[practice.id] = PracticeOpen(practice, "failed", why=result.note or "was not searched")
        elif not result.patients:
            absent.append(practice)
        found += [(practice, p) for p in result.patients]
    opened = await asyncio.gather(*(_open(core, practice, patient, reason, break_glass, normalised)
                                    for practice, patient in found))
    if not opened and not early:
        from app.core.service import PatientNotFound

        raise PatientNotFound(f"No practice has a patient with NHS number {nhs_number.format_nhs_number(normalised)}.")
    order = {p.id: i for i, p in enumerate(core.practices)}
    every = sorted([*opened, *early.values()], key=lambda o: order[o.practice.id])
    return AllPractices(normalised, tuple(every), tuple(sorted(absent, key=lambda p: order[p.id])))


async def _open(core: MosaicCore, practice: Practice, patient: PatientSummary, reason: str | None,
                break_glass: bool, number: str) -> PracticeOpen:
    from app.core.audit.journal import JournalError
    from app.core.service import PatientNotFound

    try:
        record = await core.open_record(practice.id, patient.local_id, purpose=reason, break_glass=break_glass)
    except PolicyError as exc:
        return PracticeOpen(practice, "denied", why=exc.decision.why, needs=exc.needs, local_id=patient.local_id)
    except AdapterError as exc:
        return PracticeOpen(practice, "failed", why=exc.message, local_id=patient.local_id)
    except (PatientNotFound, AuditError) as exc:
        return PracticeOpen(practice, "failed", why=str(exc), local_id=patient.local_id)
    except JournalError:
        raise  # nothing can be journaled: nothing may be shown from any practice
    except Exception as exc:  # one practice's surprise never hides the others
        log.exception("practice=%s opening the record failed unexpectedly", practice.id)
        return PracticeOpen(practice, "failed", why=f"the record could not be opened ({type(exc).__name__})",
                            local_id=patient.local_id)
    if nhs_number.normalise(record.patient.nhs_number or "") != number:  # one timeline never mixes two people
        log.warning("practice=%s answered the all-practices open with another NHS number", practice.id)
        return PracticeOpen(practice, "failed", local_id=patient.local_id,
                            why="answered with the record of a different patient (the NHS number does not match), "
                                "so nothing of it is shown. Tell the practice and your clinical safety officer.")
    return PracticeOpen(practice, "ok", record=record, local_id=patient.local_id)


def registered_at(outcomes: Sequence[PracticeOpen]) -> str:
    """'Registered at: Riverside Surgery, Oakwood Medical Centre': every practice whose search found the patient
    (opened or not); practices that could not be searched are not named here (nobody knows)."""
    names = [o.practice.name for o in outcomes if o.status == "ok" or o.local_id is not None]
    return "Registered at: " + (", ".join(names) if names else "no practice that could be searched")
