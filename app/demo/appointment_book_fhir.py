"""FHIR R4 JSON for a demo appointment book: Schedule, Slot, Appointment, Encounter, Practitioner(Role).

Written as text from the book's tuples with pieces made once per slot type and clinician (a page of 2,000
appointments in ~10 ms), because a full read serves ~150,000 resources a practice. The codings are those of
app/demo/appointment_book_codes.py.
"""

from __future__ import annotations

import json
from typing import Any

from app.demo.appointment_book import SLOT_STATUSES, AppointmentBook, Clinician, Row
from app.demo.appointment_book_codes import (
    ACT_CODE,
    ACT_DISPLAY,
    APPOINTMENT_CLASS_URL,
    DELIVERY_CHANNEL_URL,
    MODE_CODES,
    NATIONAL_CATEGORIES,
    NATIONAL_CATEGORY_SYSTEM,
    PRACTITIONER_ROLE_URL,
    ROLE_CODES,
    SlotType,
)
from app.demo.appointment_calendar import utc_text

BOOK_TYPES = ("Schedule", "Slot", "Appointment", "Encounter", "PractitionerRole", "Practitioner")
#: the id prefix of each type's book resources (a record's own resources have a dash in their ids)
ID_PREFIX = {"Slot": "sl", "Appointment": "ap", "Encounter": "en"}


def _j(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def service_type(t: SlotType) -> dict[str, Any]:
    """The practice's slot type as text, with its national category coding where the practice mapped it."""
    concept: dict[str, Any] = {"text": t.local}
    if t.category is not None:
        concept["coding"] = [{"system": NATIONAL_CATEGORY_SYSTEM, "code": t.category,
                              "display": NATIONAL_CATEGORIES[t.category]}]
    return concept


def mode_extensions(mode: str) -> list[dict[str, Any]]:
    """The delivery channel, and the class where it says more than the channel does (HH: a home visit)."""
    channel, act = MODE_CODES[mode]
    extensions: list[dict[str, Any]] = [{"url": DELIVERY_CHANNEL_URL, "valueCode": channel}]
    if act == "HH":
        extensions.append({"url": APPOINTMENT_CLASS_URL, "valueCodeableConcept": {
            "coding": [{"system": ACT_CODE, "code": act, "display": ACT_DISPLAY[act]}]}})
    return extensions


def role_concept(c: Clinician) -> dict[str, Any]:
    system, code, display = ROLE_CODES[c.role]
    return {"coding": [{"system": system, "code": code, "display": display}]}


class BookRenderer:
    """One book's resources as JSON text."""

    def __init__(self, book: AppointmentBook) -> None:
        self.book = book
        cal = book.calendar
        self.cal = cal
        self._service = [_j([service_type(t)]) for t in book.types]
        self._mode_ext = [_j(mode_extensions(t.mode))[1:-1] for t in book.types]
        self._enc_class = []
        for t in book.types:
            channel, act = MODE_CODES[t.mode]
            text = '"class":' + _j({"system": ACT_CODE, "code": act})
            if act == "VR":  # which virtual: the delivery channel says
                text = '"extension":' + _j([{"url": DELIVERY_CHANNEL_URL, "valueCode": channel}]) + "," + text
            self._enc_class.append(text)
        self._role_ext = [_j({"url": PRACTITIONER_ROLE_URL, "valueCodeableConcept": role_concept(c)})
                          for c in book.clinicians]
        self._actor = [_j({"reference": f"PractitionerRole/{c.role_id}", "display": c.name}) for c in book.clinicians]

    def slot(self, r: Row) -> str:
        start, sid, minute, minutes, clin, typ, status, updated = r
        cal = self.cal
        return (f'{{"resourceType":"Slot","id":"sl{sid:x}","meta":{{"lastUpdated":"{utc_text(updated)}"}},'
                f'"extension":[{self._mode_ext[typ]}],"serviceType":{self._service[typ]},'
                f'"schedule":{{"reference":"Schedule/sch{clin}"}},"status":"{SLOT_STATUSES[status]}",'
                f'"start":"{cal.text(minute)}","end":"{cal.text(minute + minutes)}"}}')

    def appointment(self, r: Row) -> str:
        start, aid, minute, minutes, clin, typ, status, made, sid, patient, updated = r
        cal = self.cal
        slot = f',"slot":[{{"reference":"Slot/sl{sid:x}"}}]' if sid >= 0 else ""
        ref = self.book.patient_reference(patient)
        attending = "declined" if status == "cancelled" else "accepted"
        who = f'{{"actor":{{"reference":"Patient/{ref}"}},"status":"{attending}"}},' if ref else ""
        return (f'{{"resourceType":"Appointment","id":"ap{aid:x}","meta":{{"lastUpdated":"{utc_text(updated)}"}},'
                f'"extension":[{self._mode_ext[typ]},{self._role_ext[clin]}],"status":"{status}",'
                f'"serviceType":{self._service[typ]},"start":"{cal.text(minute)}",'
                f'"end":"{cal.text(minute + minutes)}","created":"{cal.text(made)}"'
                f'{slot},"participant":[{who}{{"actor":{self._actor[clin]},"status":"accepted"}}]}}')

    def encounter(self, r: Row) -> str:
        start, eid, minute, minutes, clin, typ, aid, patient, updated = r
        cal = self.cal
        ref = self.book.patient_reference(patient)
        subject = f'"subject":{{"reference":"Patient/{ref}"}},' if ref else ""
        return (f'{{"resourceType":"Encounter","id":"en{eid:x}","meta":{{"lastUpdated":"{utc_text(updated)}"}},'
                f'"status":"finished",{self._enc_class[typ]},'
                f'{subject}"participant":[{{"individual":{self._actor[clin]}}}],'
                f'"appointment":[{{"reference":"Appointment/ap{aid:x}"}}],'
                f'"period":{{"start":"{cal.text(minute)}","end":"{cal.text(minute + minutes)}"}}}}')

    def render(self, rtype: str, row: Row) -> str:
        return {"Slot": self.slot, "Appointment": self.appointment, "Encounter": self.encounter}[rtype](row)

    # -- the small ones, as dicts ---------------------------------------------------------------

    def schedule(self, c: Clinician) -> dict[str, Any]:
        book = self.book
        return {"resourceType": "Schedule", "id": c.schedule_id, "meta": {"lastUpdated": utc_text(book.built_at)},
                "active": True,
                "extension": [{"url": PRACTITIONER_ROLE_URL, "valueCodeableConcept": role_concept(c)}],
                "actor": [{"reference": f"Practitioner/{c.practitioner_id}", "display": c.name},
                          {"reference": f"PractitionerRole/{c.role_id}", "display": c.name}],
                "planningHorizon": {"start": book.first_day.isoformat(), "end": book.last_day.isoformat()}}

    def practitioner_role(self, c: Clinician) -> dict[str, Any]:
        return {"resourceType": "PractitionerRole", "id": c.role_id,
                "meta": {"lastUpdated": utc_text(self.book.built_at)}, "active": True,
                "practitioner": {"reference": f"Practitioner/{c.practitioner_id}", "display": c.name},
                "code": [role_concept(c)]}

    def practitioner(self, c: Clinician) -> dict[str, Any]:
        return {"resourceType": "Practitioner", "id": c.practitioner_id,
                "meta": {"lastUpdated": utc_text(self.book.built_at)}, "active": True, "name": [{"text": c.name}]}

    def small(self, rtype: str) -> list[dict[str, Any]]:
        make = {"Schedule": self.schedule, "PractitionerRole": self.practitioner_role,
                "Practitioner": self.practitioner}[rtype]
        return [make(c) for c in self.book.clinicians]
