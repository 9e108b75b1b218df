"""Spine and GP Connect error codes as messages a user can act on.

Each message names the practice ({practice}) and says what to do next. The codes are those of the
GP Connect error handling guidance (Spine-ErrorOrWarningCode-1); 502/504 come from the Spine Secure
Proxy when the practice's system is offline or slow.
"""

from __future__ import annotations

from adapters.base import AdapterError

#: Spine code -> (AdapterError kind, message)
SPINE_ERRORS: dict[str, tuple[str, str]] = {
    "PATIENT_NOT_FOUND": ("not-found", "{practice} has no GP record for this NHS number (the patient may not "
                                       "be registered there). Check the NHS number, or search other practices."),
    "NO_PATIENT_CONSENT": ("auth", "{practice}: the patient has not consented to share their record with other "
                                   "organisations (national data sharing preference). Ask the patient, or use "
                                   "the practice's own system."),
    "NO_ORGANISATIONAL_CONSENT": ("auth", "{practice} has not agreed to share records with your organisation "
                                          "over GP Connect. Contact the practice, or use its own system."),
    "NO_ORGANISATION_CONSENT": ("auth", "{practice} has not agreed to share records with your organisation "
                                        "over GP Connect. Contact the practice, or use its own system."),
    "NO_RELATIONSHIP": ("auth", "{practice} found no care relationship between your organisation and this "
                                "patient, so it will not share the record. Use the practice's own system if "
                                "you are caring for the patient."),
    "NON_AUTHORITATIVE": ("auth", "{practice} is not the authoritative source for this patient's record (they "
                                  "may be registered elsewhere). Search other practices."),
    "ACCESS_DENIED": ("auth", "{practice} refused access to this record for your account. Check you are signed "
                              "in with the right role; if it persists, tell your IT support."),
    "INVALID_NHS_NUMBER": ("not-found", "{practice} says the NHS number is not valid. Check it and search again."),
    "INVALID_IDENTIFIER_SYSTEM": ("bad-reply", "{practice} did not accept how Mosaic identified the patient. "
                                               "Tell your IT support."),
    "INVALID_IDENTIFIER_VALUE": ("not-found", "{practice} did not accept the patient identifier. Check the NHS "
                                              "number and search again."),
    "INVALID_PATIENT_DEMOGRAPHICS": ("not-found", "{practice} could not match this patient's details with the "
                                                  "national demographics service. Check the NHS number."),
    "INVALID_PARAMETER": ("bad-reply", "{practice} did not accept Mosaic's request for this record (invalid "
                                       "parameter). Tell your IT support; Mosaic may need updating for this "
                                       "practice's system."),
    "INVALID_RESOURCE": ("bad-reply", "{practice} did not accept Mosaic's request for this record (invalid "
                                      "resource). Tell your IT support."),
    "REFERENCE_NOT_FOUND": ("bad-reply", "{practice} could not follow a reference in Mosaic's request. Tell "
                                         "your IT support."),
    "BAD_REQUEST": ("bad-reply", "{practice} could not understand Mosaic's request. Tell your IT support."),
    "INVALID_ODS_CODE": ("config", "{practice} did not accept an organisation code Mosaic sent. Ask IT to check "
                                   "the ODS codes in the practice directory."),
    "ORGANISATION_NOT_FOUND": ("config", "{practice} does not know the organisation Mosaic named. Ask IT to check "
                                         "the ODS codes in the practice directory."),
    "PRACTITIONER_NOT_FOUND": ("auth", "{practice} does not recognise the practitioner Mosaic named. Sign in "
                                       "again; if it persists, tell your IT support."),
    "NO_RECORD_FOUND": ("not-found", "{practice} holds no record for this patient."),
    "INTERNAL_SERVER_ERROR": ("server", "{practice}'s GP system had an internal error. Try again later; if it "
                                        "persists, tell the practice."),
    "NOT_IMPLEMENTED": ("unsupported", "{practice}'s GP system does not offer this GP Connect request. Use the "
                                       "practice's own system."),
}

PROXY_ERRORS: dict[int, tuple[str, str]] = {
    502: ("network", "The NHS Spine could not reach {practice}'s GP system (HTTP 502: it may be offline). Try "
                     "again later; if it persists, tell the practice."),
    504: ("timeout", "{practice}'s GP system did not answer the NHS Spine in time (HTTP 504). Try again in a "
                     "few minutes."),
}


def spine_error(practice_name: str, code: str, status: int | None = None) -> AdapterError | None:
    """The AdapterError for a Spine code, or None when the code is not one Mosaic knows."""
    found = SPINE_ERRORS.get(code)
    if found is None:
        return None
    kind, template = found
    from adapters.http import HttpError  # an HttpError keeps the status, for the core's retry decisions

    error = HttpError(template.format(practice=practice_name), kind, status)
    error.spine_code = code
    return error


def proxy_error(practice_name: str, status: int) -> AdapterError | None:
    found = PROXY_ERRORS.get(status)
    if found is None:
        return None
    kind, template = found
    from adapters.http import HttpError

    return HttpError(template.format(practice=practice_name), kind, status)


__all__ = ["SPINE_ERRORS", "PROXY_ERRORS", "spine_error", "proxy_error"]
