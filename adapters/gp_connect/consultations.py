"""A GP Connect consultation as the clinician wrote it: its topics, their headings (History, Examination,
Plan...) and what was recorded under each, as plain text for `Entry.notes`.

A consultation is a List (SNOMED 325851000000107) naming its Encounter; its entries are topic Lists, whose
entries are category (heading) Lists or clinical items directly; a category's entries are the items. Items
a provider cannot send are entries with only a display ("Referral items are not supported by the provider
system"), and some providers put that sentence where the reference belongs: both are kept, as the clinician
must know something is missing. Free-text "Comment note" observations become the heading's text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.fhir_r4.mapping import _join, _list, _obj, _str, concept_text, dosage_text, observation_value
from adapters.gp_connect.results import Resolve

Json = dict[str, Any]

CONSULTATION = "325851000000107"
TOPIC = "25851000000105"
CATEGORY = "24781000000107"
COMMENT_NOTE = "37331000000100"  # SNOMED CT "Comment note": free text recorded in a consultation


def _code(resource: Json) -> str | None:
    codings = [c for c in (_obj(x) for x in _list((_obj(resource.get("code")) or {}).get("coding"))) if c]
    return next((_str(c.get("code")) for c in codings if _str(c.get("code"))), None)


def is_comment_note(resource: Json) -> bool:
    return resource.get("resourceType") == "Observation" and _code(resource) == COMMENT_NOTE


def _medication(resource: Json, resolve: Resolve) -> str | None:
    name = concept_text(resource.get("medicationCodeableConcept"))
    if name is None and resource.get("medicationReference") is not None:
        ref = _obj(resource.get("medicationReference")) or {}
        target = resolve(ref, resource)
        name = concept_text((target or {}).get("code")) or _str(ref.get("display"))
    dosage = dosage_text(_list(resource.get("dosageInstruction") or resource.get("dosage")))
    return _join((name or "Medication (not named)", dosage), ", ")


def item_text(resource: Json, resolve: Resolve) -> str | None:
    """One recorded item as a line of the notes."""
    kind = resource.get("resourceType")
    if kind == "Observation":
        comment = _str(resource.get("comment"))
        if is_comment_note(resource):
            return comment
        name = concept_text(resource.get("code"))
        value = observation_value(resource)
        return _join((_join((name, value), " "), comment), " — ")
    if kind in ("MedicationRequest", "MedicationStatement"):
        return _medication(resource, resolve)
    if kind == "Immunization":
        return _join(("Immunisation", concept_text(resource.get("vaccineCode"))), ": ")
    if kind == "AllergyIntolerance":
        return _join(("Allergy", concept_text(resource.get("code"))), ": ")
    if kind == "ReferralRequest":
        what = _join([concept_text(x) for x in _list(resource.get("serviceRequested"))]
                     + [concept_text(resource.get("specialty"))], ", ")
        return _join(("Referral", what), ": ")
    if kind == "ProcedureRequest":
        return _join(("Request", concept_text(resource.get("code"))), ": ")
    return concept_text(resource.get("code")) or _str(resource.get("title"))


def _entry_text(item: Json, container: Json, resolve: Resolve) -> tuple[Json | None, str | None]:
    """(the resource an entry names, or None, and the text of an entry that names none)."""
    ref = _obj(item.get("item"))
    if ref is None:
        return None, None
    target = resolve(ref, container)
    if target is not None:
        return target, None
    reference = _str(ref.get("reference"))
    if reference and " " in reference:  # a sentence where the reference belongs
        return None, reference
    return None, _str(ref.get("display"))


def _joined(texts: list[str]) -> str:
    """Items one after another: '; ' between them, or a space after one that ends a sentence."""
    out = ""
    for text in texts:
        out += ("" if not out else " " if out.endswith((".", "!", "?")) else "; ") + text
    return out


def _lines(lst: Json, resolve: Resolve) -> list[str]:
    texts: list[str] = []
    for raw in _list(lst.get("entry")):
        target, text = _entry_text(_obj(raw) or {}, lst, resolve)
        if target is not None and target.get("resourceType") != "List":
            text = item_text(target, resolve)
        if text and text not in texts:  # a plan and its issue read alike: say it once
            texts.append(text)
    return texts


def consultation_notes(consultation: Json, resolve: Resolve, topic_title: Callable[[Json], str | None]) -> str | None:
    """The notes of one consultation List: a line per topic title and per heading ("History: ...")."""
    out: list[str] = []
    for raw in _list(consultation.get("entry")):
        topic, text = _entry_text(_obj(raw) or {}, consultation, resolve)
        if topic is None or topic.get("resourceType") != "List":
            item = item_text(topic, resolve) if topic is not None else text
            if item:
                out.append(item)
            continue
        title = topic_title(topic)
        topic_lines: list[str] = []
        direct = _lines(topic, resolve)
        if direct:
            topic_lines.append(_joined(direct))
        for sub in (_obj(x) for x in _list(topic.get("entry"))):
            category = resolve((sub or {}).get("item"), topic)
            if not category or category.get("resourceType") != "List":
                continue
            lines = _lines(category, resolve)
            if lines:
                heading = _str(category.get("title"))
                topic_lines.append(f"{heading}: {_joined(lines)}" if heading else _joined(lines))
        if title and topic_lines:
            out.append(title)
        out.extend(topic_lines)
    return "\n".join(out) or None
