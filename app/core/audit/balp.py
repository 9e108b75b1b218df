"""A journal entry as a FHIR R4 AuditEvent shaped after IHE Basic Audit Log Patterns (BALP).

The practice that owns a record receives one AuditEvent per journal entry, so its own audit answers
"who outside this practice looked at this patient?". A read follows BALP PatientRead (type `rest`,
subtype `read`, action R); a search follows PatientQuery (subtype `search-type`, action E, the query
base64-encoded). The journal entry's id travels as an entity identifier (`AUDIT_ENTRY_SYSTEM`), which
the sender uses for conditional create so that a retry never makes a second copy.

BALP's profiles fix outcome to success ("failures are recorded differently"), so only successful
events claim a profile in `meta.profile`; failures keep the same shape with outcome 4 or 8.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from app.core.audit.model import Action, JournalEntry, Outcome
from app.core.model import SECTION_TITLES, Practice, SectionName
from app.core.nhs_number import NHS_NUMBER_SYSTEM, normalise

#: identifier system for Mosaic journal entry ids (value: "urn:uuid:<entry_id>")
AUDIT_ENTRY_SYSTEM = "https://mosaic.example/audit-entry-id"
#: identifier system for a Mosaic user's login (no national system exists for local logins)
LOGIN_SYSTEM = "https://mosaic.example/login"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
SDS_USER_SYSTEM = "https://fhir.nhs.uk/Id/sds-user-id"
SDS_ROLE_PROFILE_SYSTEM = "https://fhir.nhs.uk/Id/sds-role-profile-id"

EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
OUTCOME = "http://terminology.hl7.org/CodeSystem/audit-event-outcome"

PROFILE_READ = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead"
PROFILE_QUERY = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientQuery"
PROFILE_QUERY_NO_PATIENT = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Query"

#: v3 PurposeOfUse codes (from v3-ActReason) a typed reason may name directly
PURPOSE_CODES: dict[str, str] = {
    "TREAT": "treatment",
    "ETREAT": "Emergency Treatment",
    "CAREMGT": "care management",
    "HOPERAT": "healthcare operations",
    "HQUALIMP": "health quality improvement",
    "PATRQT": "patient requested",
    "PATADMIN": "patient administration",
    "COC": "coordination of care",
    "HRESCH": "healthcare research",
    "HTEST": "test health data",
}

#: journal outcome -> (audit-event-outcome code, display). Denied is a refusal like HTTP 403 (minor);
#: a failed fetch is the server or network failing like HTTP 5xx (serious).
_OUTCOMES: dict[Outcome, tuple[str, str]] = {
    Outcome.SUCCESS: ("0", "Success"),
    Outcome.DENIED: ("4", "Minor failure"),
    Outcome.FAILURE: ("8", "Serious failure"),
}


def entry_identifier(entry: JournalEntry) -> tuple[str, str]:
    """(system, value) naming this journal entry; the conditional-create key at every destination."""
    return AUDIT_ENTRY_SYSTEM, f"urn:uuid:{entry.entry_id}"


def audit_event(entry: JournalEntry, practice: Practice | None, server_base_url: str) -> dict[str, Any]:
    """The AuditEvent telling `practice` (served at `server_base_url`) about `entry`. No None values."""
    code, display = _OUTCOMES.get(entry.outcome, _OUTCOMES[Outcome.FAILURE])
    is_search = entry.action == Action.SEARCH
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": _event_type(entry.action),
        "subtype": _subtype(entry.action),
        "action": "E" if is_search else "R",
        "recorded": _instant(entry),
        "outcome": code,
        "agent": [_user_agent(entry), _client_agent(entry), _server_agent(entry, practice, server_base_url)],
        "source": {
            "site": _site(entry, practice),
            "observer": {"display": " ".join(p for p in ("Mosaic", entry.app_version, "on", entry.workstation) if p)},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
        "entity": _entities(entry),
    }
    if code == "0":
        profile = PROFILE_READ if not is_search else (
            PROFILE_QUERY if _has_patient(entry) else PROFILE_QUERY_NO_PATIENT)
        event["meta"] = {"profile": [profile]}
    else:
        event["outcomeDesc"] = entry.outcome_detail or display
    return _pruned(event)


# --- parts ---------------------------------------------------------------------------------------


def _event_type(action: Action) -> dict[str, str]:
    if action == Action.EXPORT:
        return {"system": DCM, "code": "110106", "display": "Export"}
    if action == Action.REVIEW:  # a flagged access marked reviewed: the audit log was used
        return {"system": DCM, "code": "110101", "display": "Audit Log Used"}
    if action == Action.INSIGHT:  # a locality insight query (aggregates, no patient): in exports, never upstream
        return {"system": DCM, "code": "110112", "display": "Query"}
    return {"system": EVENT_TYPE, "code": "rest", "display": "Restful Operation"}


def _subtype(action: Action) -> list[dict[str, str]]:
    if action == Action.SEARCH:
        return [{"system": RESTFUL, "code": "search-type", "display": "search-type"}]
    return [{"system": RESTFUL, "code": "read", "display": "read"}]


def _instant(entry: JournalEntry) -> str:
    """FHIR instant: seconds and a zone are required; journal times are aware UTC."""
    when = entry.recorded_at
    if when.tzinfo is None:
        raise ValueError(f"journal entry {entry.entry_id} has a time without a zone")
    return when.isoformat(timespec="milliseconds")


def _user_agent(entry: JournalEntry) -> dict[str, Any]:
    user = entry.user
    roles: list[dict[str, Any]] = []
    if user.role:
        roles.append({"text": user.role})
    rpid = user.professional_ids.get("sds_role_profile_id")
    if rpid:
        roles.append({"coding": [{"system": SDS_ROLE_PROFILE_SYSTEM, "code": rpid}]})
    return {
        "type": {"coding": [{"system": PARTICIPATION, "code": "IRCP", "display": "information recipient"}]},
        "role": roles,
        "who": {"identifier": {"system": LOGIN_SYSTEM, "value": user.login}, "display": user.display_name},
        "altId": user.professional_ids.get("sds_user_id"),
        "name": user.display_name,
        "requestor": True,
        "purposeOfUse": _purpose(entry),
    }


def _purpose(entry: JournalEntry) -> list[dict[str, Any]]:
    """A typed reason that is a v3 PurposeOfUse code is coded; anything else is kept as text."""
    codings: list[dict[str, str]] = []
    text = (entry.purpose or "").strip()
    if text.upper() in PURPOSE_CODES:
        codings.append({"system": ACT_REASON, "code": text.upper(), "display": PURPOSE_CODES[text.upper()]})
    elif entry.action == Action.BREAK_GLASS:
        codings.append({"system": ACT_REASON, "code": "ETREAT", "display": PURPOSE_CODES["ETREAT"]})
    if not codings and not text:
        return []
    return [{"coding": codings, "text": text or None}]


def _client_agent(entry: JournalEntry) -> dict[str, Any]:
    return {
        "type": {"coding": [{"system": DCM, "code": "110153", "display": "Source Role ID"}]},
        "who": {"identifier": {"value": entry.workstation}, "display": f"Mosaic on {entry.workstation}"},
        "requestor": False,
        "network": {"address": entry.workstation, "type": "1"},  # 1 = machine name
    }


def _server_agent(entry: JournalEntry, practice: Practice | None, base_url: str) -> dict[str, Any]:
    ods = (practice.ods_code if practice else None) or entry.practice_ods
    name = practice.name if practice else entry.practice_id
    host = urlsplit(base_url).hostname or base_url
    return {
        "type": {"coding": [{"system": DCM, "code": "110152", "display": "Destination Role ID"}]},
        "who": {"identifier": {"system": ODS_SYSTEM, "value": ods} if ods else None,
                "display": name or host},
        "requestor": False,
        "network": {"address": host, "type": "2" if _is_ip(host) else "1"},  # 2 = IP address
    }


def _site(entry: JournalEntry, practice: Practice | None) -> str | None:
    return (practice.ods_code if practice else None) or entry.practice_ods


def _entities(entry: JournalEntry) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    if _has_patient(entry):
        entities.append(_patient_entity(entry))
    if entry.action == Action.SEARCH:
        entities.append(_query_entity(entry))
    elif entry.action == Action.REVIEW:
        entities.append(_reviewed_entity(entry))
    elif entry.action == Action.INSIGHT:
        entities.append(_insight_entity(entry))
    else:
        entities.extend(_section_entity(name) for name in entry.sections)
    entities.append({
        "what": {"identifier": dict(zip(("system", "value"), entry_identifier(entry), strict=True))},
        "type": {"system": ENTITY_TYPE, "code": "4", "display": "Other"},
        "description": "Mosaic audit journal entry",
    })
    return entities


def _reviewed_entity(entry: JournalEntry) -> dict[str, Any]:
    """The journal entry a review marked reviewed, and the reviewer's note, as details: never as an identifier
    of AUDIT_ENTRY_SYSTEM, which names the event's own entry (the conditional-create key)."""
    details = [{"type": "reviewed-entry", "valueString": f"urn:uuid:{entry.details.get('reviewed') or ''}"}]
    if entry.details.get("note"):
        details.append({"type": "note", "valueString": str(entry.details["note"])})
    return {"type": {"system": ENTITY_TYPE, "code": "4", "display": "Other"},
            "description": "Reviewed Mosaic audit journal entry", "detail": details}


def _has_patient(entry: JournalEntry) -> bool:
    return bool(entry.patient_local_id or entry.patient_nhs_number)


def _patient_entity(entry: JournalEntry) -> dict[str, Any]:
    what: dict[str, Any] = {}
    if entry.patient_local_id:
        what["reference"] = f"Patient/{entry.patient_local_id}"
    if entry.patient_nhs_number:
        what["identifier"] = {"system": NHS_NUMBER_SYSTEM, "value": normalise(entry.patient_nhs_number)}
    return {"what": what,
            "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
            "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"}}


def _section_entity(name: str) -> dict[str, Any]:
    try:
        title = SECTION_TITLES[SectionName(name)]
    except ValueError:
        title = name
    return {"what": {"display": title},
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
            "name": name,
            "description": title}


def _query_entity(entry: JournalEntry) -> dict[str, Any]:
    text = query_text(entry)
    return {"type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
            "description": text,
            "query": base64.b64encode(text.encode("utf-8")).decode("ascii")}


def _insight_entity(entry: JournalEntry) -> dict[str, Any]:
    """What an insight action asked for, in words: "show dna_rate by practice, 2026-03, riverside,hillview"."""
    from app.core.insight_access import insight_text

    text = insight_text(entry.details)
    return {"type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
            "description": text,
            "query": base64.b64encode(text.encode("utf-8")).decode("ascii")}


#: Mosaic's search fields (as the recorder journals them) -> the FHIR Patient search they were sent as
_FHIR_SEARCH: dict[str, tuple[str, Callable[[str], str]]] = {
    "nhs_number": ("identifier", lambda v: f"{NHS_NUMBER_SYSTEM}|{normalise(v)}"),
    "family": ("family", str.strip),
    "given": ("given", str.strip),
    "birth_date": ("birthdate", lambda v: f"eq{v}"),
}


def query_text(entry: JournalEntry) -> str:
    """The search as a FHIR query string, from `details["query"]` (text, or Mosaic's search fields),
    else from what names the patient."""
    query = entry.details.get("query")
    if isinstance(query, str) and query.strip():
        return query.strip()
    if isinstance(query, Mapping) and query:
        params = []
        for key, value in query.items():
            if value in (None, ""):
                continue
            name, convert = _FHIR_SEARCH.get(str(key), (str(key), str))
            params.append((name, convert(str(value))))
        return urlencode(sorted(params))
    if entry.patient_nhs_number:
        return urlencode({"identifier": f"{NHS_NUMBER_SYSTEM}|{normalise(entry.patient_nhs_number)}"})
    if entry.patient_local_id:
        return urlencode({"_id": entry.patient_local_id})
    return "Patient?"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _pruned(value: Any) -> Any:
    """Drop None, empty strings, lists and objects: FHIR JSON forbids them."""
    if isinstance(value, dict):
        kept = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        kept_items = [_pruned(v) for v in value]
        return [v for v in kept_items if v not in (None, "", [], {})]
    return value
