"""What a GP Connect (CareConnect-GPC-Patient-1) Patient says beyond the search row: death, home address and
the registration at the practice (the RegistrationDetails extension, the registered GP and the practice).

Real providers nest oddly: `generalPractitioner` as a lone object rather than a list, the preferred branch
surgery inside a second RegistrationDetails extension within the first, a registration type given only as a
display. Each is read where it is found; anything missing is left unknown (None), never guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

from adapters.fhir_r4.mapping import _ended, _join, _list, _obj, _str, choose_name, full_date, name_parts
from app.core.model import REGISTRATION_TYPES, Address, Registration

Json = dict[str, Any]
#: resolve(reference object, container) -> the resource it points to, or None
Resolve = Callable[[Any, Json], "Json | None"]

REGISTRATION_DETAILS = "Extension-CareConnect-GPC-RegistrationDetails-1"
ODS_SYSTEMS = ("https://fhir.nhs.uk/Id/ods-organization-code", "https://fhir.nhs.uk/Id/ods-site-code")
_ADDRESS_RANK = {"home": 0, None: 1, "temp": 2, "work": 3, "billing": 4, "old": 9}


def deceased(patient: Json) -> bool | date:
    """False (alive, or not recorded), True (deceased, the date not known to the day) or the date of death."""
    raw = patient.get("deceasedDateTime")
    when = raw.strip() if isinstance(raw, str) else None  # a number where a dateTime belongs says nothing
    if when:
        return full_date(when) or True
    return patient.get("deceasedBoolean") is True


def home_address(patient: Json) -> Address | None:
    """The home (else the current) address; an ended or 'old' address only when there is no other."""
    candidates = [a for a in (_obj(x) for x in _list(patient.get("address"))) if a]
    if not candidates:
        return None
    best = min(candidates, key=lambda a: (_ended(a), _ADDRESS_RANK.get(_str(a.get("use")), 1)))
    lines = tuple(s for s in (_str(x) for x in _list(best.get("line"))) if s)
    postcode = _str(best.get("postalCode"))
    address = Address(lines=lines, city=_str(best.get("city")), district=_str(best.get("district")),
                      postcode=" ".join(postcode.upper().split()) if postcode else None)
    if not address.one_line():
        text = _str(best.get("text"))
        return Address(lines=(text,)) if text else None
    return address


def _registration_parts(patient: Json) -> Iterator[Json]:
    """The sub-extensions of every RegistrationDetails extension, including one nested in another."""
    stack = [e for e in (_obj(x) for x in _list(patient.get("extension"))) if e]
    while stack:
        ext = stack.pop(0)
        if (_str(ext.get("url")) or "").endswith(REGISTRATION_DETAILS):
            for sub in (_obj(x) for x in _list(ext.get("extension"))):
                if sub and (_str(sub.get("url")) or "").endswith(REGISTRATION_DETAILS):
                    stack.append(sub)
                elif sub:
                    yield sub


def _registration_kind(concept: Any) -> str | None:
    cc = _obj(concept) or {}
    for coding in (c for c in (_obj(x) for x in _list(cc.get("coding"))) if c):
        code = (_str(coding.get("code")) or "").upper()
        if code in REGISTRATION_TYPES:
            return REGISTRATION_TYPES[code]
        if _str(coding.get("display")):
            return _str(coding.get("display"))
    return _str(cc.get("text"))


def _person(resource: Json | None) -> str | None:
    """'Dr Anna Smith' from a Practitioner (or a PractitionerRole's practitioner, already resolved)."""
    name = choose_name(_list((resource or {}).get("name")))
    if not name:
        return None
    family, given = name_parts(name)
    prefix = [p for p in (_str(x) for x in _list(name.get("prefix"))) if p]
    return _join([*prefix, *given, family], " ")


def _ods(resource: Json | None, reference: Json | None = None) -> str | None:
    identifiers = [*_list((resource or {}).get("identifier")), (reference or {}).get("identifier")]
    for ident in (_obj(x) for x in identifiers):
        if ident and _str(ident.get("system")) in ODS_SYSTEMS and _str(ident.get("value")):
            return _str(ident.get("value"))
    return None


def registration(patient: Json, resolve: Resolve) -> Registration | None:
    """Where and how the patient is registered: the practice (managingOrganization, else an Organization among
    the generalPractitioner references), the usual GP, the registration type, since when and the preferred
    branch surgery. None when the Patient says none of it."""
    kind = since = branch = None
    for part in _registration_parts(patient):
        url = _str(part.get("url")) or ""
        if url == "registrationType" and kind is None:
            kind = _registration_kind(part.get("valueCodeableConcept"))
        elif url == "registrationPeriod" and since is None:
            since = full_date(_str((_obj(part.get("valuePeriod")) or {}).get("start")))
        elif url == "preferredBranchSurgery" and branch is None:
            branch_ref = _obj(part.get("valueReference")) or {}
            location = resolve(branch_ref, patient)
            branch = _str((location or {}).get("name")) or _str(branch_ref.get("display"))

    gp = practice_name = practice_ods = None
    organization_ref = _obj(patient.get("managingOrganization"))
    organization = resolve(organization_ref, patient) if organization_ref else None
    for ref in (_obj(x) for x in _list(patient.get("generalPractitioner"))):
        target = resolve(ref, patient) if ref else None
        kind_of = _str((target or {}).get("resourceType")) or (_str((ref or {}).get("reference")) or "").split("/")[0]
        if kind_of == "PractitionerRole" and target is not None:
            organization_ref = organization_ref or _obj(target.get("organization"))
            organization = organization or resolve(target.get("organization"), target)
            target, kind_of = resolve(target.get("practitioner"), target), "Practitioner"
        if kind_of == "Organization":
            if organization is None and organization_ref is None:
                organization, organization_ref = target, ref
        elif gp is None:
            gp = _person(target) or _str((ref or {}).get("display"))
    if organization is not None or organization_ref is not None:
        practice_name = _str((organization or {}).get("name")) or _str((organization_ref or {}).get("display"))
        practice_ods = _ods(organization, organization_ref)
    if not any((practice_ods, practice_name, gp, kind, since, branch)):
        return None
    return Registration(practice_ods=practice_ods, practice_name=practice_name, gp=gp, kind=kind, since=since,
                        branch=branch)
