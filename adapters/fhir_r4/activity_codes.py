"""The codes Mosaic reads an appointment book by: FHIR codings -> app/core/activity.py's words.

Each table names what it maps and nothing is guessed: a coding not here maps to None, and the practice's own
text is kept beside it (`local_type`) for the data-quality badge and the mapping-consistency check.
"""

from __future__ import annotations

from app.core.activity import NATIONAL_CATEGORIES as NATIONAL_CATEGORIES  # the contract's vocabulary
from app.core.activity import NATIONAL_CATEGORY_SYSTEM as NATIONAL_CATEGORY_SYSTEM

#: GP Connect's DeliveryChannel extension (matched by name, any version: -1, -2, UK Core's)
DELIVERY_CHANNEL_NAME = "deliverychannel"
#: GP Connect's PractitionerRole extension on Schedule and Appointment
PRACTITIONER_ROLE_NAME = "practitionerrole"
#: FHIR R5 Appointment.class, carried in R4 by the cross-version extension
APPOINTMENT_CLASS_URL = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Appointment.class"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SNOMED = "http://snomed.info/sct"
STAFF_GROUP_SYSTEM = "https://fhir.mosaic.example.nhs.uk/CodeSystem/practice-staff-group"

#: DeliveryChannel code (lower case) -> mode
CHANNEL_MODES: dict[str, str] = {"in-person": "face-to-face", "telephone": "telephone", "video": "video"}
#: v3 ActCode class -> mode (VR alone does not say telephone or video: the channel must)
CLASS_MODES: dict[str, str | None] = {"AMB": "face-to-face", "HH": "home-visit", "VR": None}


def mode_from(act: object, channel: object) -> str | None:
    """The mode: a home visit by its class (HH), else by the DeliveryChannel (lower case), else by the class
    alone; None when neither says."""
    if act == "HH":
        return "home-visit"
    if channel in CHANNEL_MODES:
        return CHANNEL_MODES[channel]
    return CLASS_MODES.get(act) if isinstance(act, str) else None


#: (system, code) -> clinician type
ROLE_TYPES: dict[tuple[str, str], str] = {
    (SNOMED, "62247001"): "gp",  # General practitioner
    (SNOMED, "106292003"): "nurse",  # Professional nurse
    (SNOMED, "224535009"): "nurse",  # Registered nurse
    (SNOMED, "46255001"): "pharmacist",  # Pharmacist
    (STAFF_GROUP_SYSTEM, "gp"): "gp",
    (STAFF_GROUP_SYSTEM, "nurse"): "nurse",
    (STAFF_GROUP_SYSTEM, "pharmacist"): "pharmacist",
    (STAFF_GROUP_SYSTEM, "other"): "other",
}

#: extension URL -> "channel", "class", "role" or "" (worked out once per URL)
URL_KINDS: dict[str, str] = {}


def url_kind(url: str) -> str:
    """"channel", "class", "role" or "" for an extension's URL (worked out once per URL)."""
    kind = URL_KINDS.get(url)
    if kind is None:
        name = url.rsplit("/", 1)[-1].lower()
        kind = ("class" if url == APPOINTMENT_CLASS_URL else "channel" if DELIVERY_CHANNEL_NAME in name
                else "role" if PRACTITIONER_ROLE_NAME in name else "")
        if len(URL_KINDS) < 512:  # a server inventing URLs cannot grow this without bound
            URL_KINDS[url] = kind
    return kind
