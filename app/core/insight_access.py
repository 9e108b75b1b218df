"""Locality insight in the core: who may see it (the access policy) and its journal entries.

Every insight action (a refresh, a figure shown, peers, an export, an import) is journaled as Action.INSIGHT —
who, what (metric, cut, period, practices), when — and committed before anything is read or shown, as record
access is: no face of the app shows a figure that was not recorded first.

Insight entries go to this PC's journal and the locality's central audit store, never to a practice. They name
no patient, so a practice's own audit trail (FHIR AuditEvents about access to its patients' records) has nothing
to hold; the locality's figures are the locality's business, reviewed where the locality reviews its users (the
central store); and one query over twenty practices would otherwise be twenty AuditEvents a practice cannot act
on. A refused insight action is journaled as denied (flagged for review), like a refused record open.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from app.core.policy import ALLOW_ALL, PolicyDecision, PolicyError

if TYPE_CHECKING:
    from app.core.audit.model import JournalEntry
    from app.core.model import Practice
    from app.core.service import MosaicCore

#: what an insight entry's details "insight" may say
INSIGHT_ACTIONS = ("refresh", "show", "peers", "export", "import-gpad", "quality", "view")


@dataclasses.dataclass(frozen=True)
class InsightQuery:
    """One insight action as the journal records it. `practices`: the practice ids it covers (all the user's, for
    a locality-wide figure)."""

    what: str  # one of INSIGHT_ACTIONS
    metric: str | None = None
    by: str | None = None
    period: str | None = None
    practices: tuple[str, ...] = ()
    extra: Mapping[str, object] = dataclasses.field(default_factory=dict)

    def details(self) -> dict[str, object]:
        found: dict[str, object] = {"insight": self.what}
        for key in ("metric", "by", "period"):
            if getattr(self, key) is not None:
                found[key] = getattr(self, key)
        found["practices"] = list(self.practices)
        found.update(self.extra)
        return found


def insight_text(details: Mapping[str, object]) -> str:
    """An insight entry's what, in words: "show dna_rate by practice, 2026-03 (riverside,hillview)"."""
    said = [str(details.get("insight", "insight"))]
    if details.get("metric"):
        said.append(str(details["metric"]))
    if details.get("by"):
        said.append(f"by {details['by']}")
    text = " ".join(said) + (f", {details['period']}" if details.get("period") else "")
    practices = details.get("practices")
    if isinstance(practices, list) and practices:
        text += f" ({','.join(str(p) for p in practices)})"
    outcomes = details.get("outcomes")
    if isinstance(outcomes, dict):  # a refresh's outcome entry: how each practice ended
        counted = {status: sum(1 for s in outcomes.values() if s == status) for status in dict.fromkeys(
            sorted(outcomes.values()))}
        text += ": " + ", ".join(f"{n} {status}" for status, n in counted.items())
    return text


def insight_decision(core: MosaicCore) -> PolicyDecision:
    """May the signed-in user see locality insight at all? With no access policy (the single-user demo, a
    practice with no policy file): yes, as every other access is without a policy."""
    return ALLOW_ALL if core.policy is None else core.policy.insight_decision(core.login)


def insight_practices(core: MosaicCore) -> list[Practice]:
    """The configured practices whose figures the user may see (PolicyError when insight is not theirs at all)."""
    decision = insight_decision(core)
    if not decision.allowed:
        raise PolicyError(decision)
    policy = core.policy
    return [p for p in core.practices if policy is None or policy.insight_decision(core.login, p.id).allowed]


async def journal_insight(core: MosaicCore, query: InsightQuery, *, outcome_detail: str | None = None,
                          failed: bool = False, refused: PolicyDecision | None = None) -> JournalEntry:
    """Commit `query` to the journal (and the outbox row for the central store) before anything is shown;
    AuditError when it cannot be recorded (then nothing may be shown). Refused by the policy (insight not the
    role's, or `refused`: a narrower refusal such as a practice outside the role): journaled as denied, then
    PolicyError."""
    from app.core.audit.model import Action, JournalEntry, Outcome

    audit = await core.audit()
    decision = insight_decision(core)
    if decision.allowed and refused is not None and not refused.allowed:
        decision = refused
    outcome = Outcome.SUCCESS if decision.allowed and not failed else \
        Outcome.FAILURE if decision.allowed else Outcome.DENIED
    details = query.details()
    if not decision.allowed:
        details.update({"flagged": True, "denied": True, "flag": "denied"})
    from app import __version__

    entry = JournalEntry(action=Action.INSIGHT, user=audit.user, outcome=outcome,
                         outcome_detail=decision.why if not decision.allowed else outcome_detail,
                         details=details, app_version=__version__)
    committed = await audit.commit_central_only(entry, "the locality")
    if not decision.allowed:
        raise PolicyError(decision)
    return committed


def check_practices(core: MosaicCore, wanted: Sequence[str]) -> tuple[str, ...]:
    """`wanted` practice ids, each one the user may see insight for (PolicyError naming the first that is not;
    ValueError naming one that is not configured). Empty `wanted`: all of the user's."""
    mine = [p.id for p in insight_practices(core)]
    if not wanted:
        return tuple(mine)
    configured = {p.id for p in core.practices}
    for pid in wanted:
        if pid not in configured:
            raise ValueError(f"No practice '{pid}' is configured (configured: {', '.join(sorted(configured))}).")
        if pid not in mine:
            assert core.policy is not None
            raise PolicyError(core.policy.insight_decision(core.login, pid))
    return tuple(wanted)


async def require_insight(core: MosaicCore, query: InsightQuery) -> list[Practice]:
    """`insight_practices`, with a refusal journaled as denied (naming `query`) before PolicyError is raised: a
    refused attempt is recorded whichever face made it, before anything is opened or read."""
    try:
        return insight_practices(core)
    except PolicyError:
        await journal_insight(core, query)  # denied: journaled, then PolicyError
        raise


async def checked_insight_practices(core: MosaicCore, query: InsightQuery, wanted: Sequence[str]
                                    ) -> tuple[str, ...]:
    """`check_practices`, with a policy refusal (no insight, or a practice outside the role) journaled as a
    denied `query` before PolicyError is raised; ValueError (not configured) as before, not journaled."""
    try:
        return check_practices(core, wanted)
    except PolicyError as exc:
        await journal_insight(core, dataclasses.replace(query, practices=tuple(wanted)), refused=exc.decision)
        raise
