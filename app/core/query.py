"""Turning what a person types in the search box into a PatientQuery.

Accepted: an NHS number (spaces or dashes allowed); a date of birth (12-Mar-1975, 12/03/1975,
12.03.1975, 1975-03-12); names, family name first ("smith john" or "Smith, John"); and any mix,
e.g. "smith 12/03/1975".
"""

from __future__ import annotations

import re
from datetime import date, datetime

from app.core import nhs_number
from app.core.model import PatientQuery


class QueryError(ValueError):
    """The text cannot be searched; the message says why in words the user can act on."""


_DATE_FORMATS = ("%d-%b-%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y-%m-%d", "%d-%m-%Y", "%d %b %Y")


def parse_date(token: str) -> date | None:
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(token, fmt).date()
        except ValueError:
            continue
    return None


def nhs_number_problem(text: str) -> str | None:
    """Why `text` is not a usable NHS number, or None if it is one (or is evidently not meant as one)."""
    stripped = text.strip()
    if not stripped or not re.fullmatch(r"[\d\s-]+", stripped):
        return None
    digits = nhs_number.normalise(stripped)
    if len(digits) < 10 and not re.search(r"[-/.]", stripped) and len(digits) >= 6:
        return f"An NHS number has 10 digits; this has {len(digits)}."
    if len(digits) > 10:
        return f"An NHS number has 10 digits; this has {len(digits)}."
    if len(digits) == 10 and not nhs_number.is_valid(digits):
        return "This is not a valid NHS number: the check digit does not match. Check for a typing error."
    return None


def parse_query(text: str) -> PatientQuery:
    raw = text.strip()
    if not raw:
        raise QueryError("Type an NHS number, a name (family name first) or a date of birth.")
    problem = nhs_number_problem(raw)
    if problem:
        raise QueryError(problem)
    if nhs_number.looks_like_nhs_number(raw):
        return PatientQuery(nhs_number=nhs_number.normalise(raw))

    family: str | None = None
    given: list[str] = []
    birth: date | None = None
    if "," in raw:
        head, _, tail = raw.partition(",")
        tokens = [head.strip()] + tail.split()
        family_from_comma = True
    else:
        tokens = raw.split()
        family_from_comma = False
    for token in tokens:
        if not token:
            continue
        as_date = parse_date(token)
        if as_date is not None:
            if birth is not None:
                raise QueryError("Give one date of birth at most.")
            if as_date > date.today():
                raise QueryError(f"The date of birth {token} is in the future.")
            birth = as_date
            continue
        if re.fullmatch(r"[\d/.-]+", token):
            raise QueryError(f"'{token}' is neither a date of birth (such as 12-Mar-1975 or 12/03/1975) "
                             "nor a 10-digit NHS number.")
        if not re.fullmatch(r"[^\W\d_][\w'’ -]*", token):
            raise QueryError(f"'{token}' cannot be part of a name.")
        if family is None:
            family = token
        else:
            given.append(token)
    if family_from_comma and family and " " in family:
        family = family.strip()
    if family is None and birth is None:
        raise QueryError("Type an NHS number, a name (family name first) or a date of birth.")
    return PatientQuery(family=family, given=" ".join(given) or None, birth_date=birth)
