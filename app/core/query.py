"""Turning what a person types in the search box into a PatientQuery.

Accepted: an NHS number (spaces or dashes allowed); a date of birth (12-Mar-1975, 12/03/1975,
12.03.1975, 1975-03-12); names, family name first ("smith john" or "Smith, John"); and any mix,
e.g. "smith 12/03/1975".

Study criteria, for the research view (never mixed with the above): `condition:<SNOMED CT code>`,
`age:<from>-<to>` (or `age:<from>+`, `age:<years>`) and `practice:<id>[,<id>…]`, e.g.
"condition:44054006 age:40-60 practice:riverside".
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


CRITERIA_HELP = ("Study criteria: condition:<SNOMED CT code>, age:<from>-<to> (or age:<from>+) and, optionally, "
                 "practice:<id>[,<id>…]; for example condition:44054006 age:40-60 practice:riverside.")
_CRITERION = re.compile(r"^([A-Za-z]+):(.*)$")
_CRITERIA = ("condition", "age", "practice")
_SNOMED_ID = re.compile(r"^[1-9][0-9]{5,17}$")
MAX_AGE = 130


def looks_like_criteria(text: str) -> bool:
    """Whether `text` is meant as study criteria (it has a `name:value` term)."""
    return any(_CRITERION.match(token) for token in text.split())


def parse_criteria(text: str) -> PatientQuery:
    """`condition:44054006 age:40-60 practice:riverside` -> a criteria PatientQuery (QueryError saying why not)."""
    condition: str | None = None
    age: tuple[int | None, int | None] = (None, None)
    practices: list[str] = []
    for token in text.split():
        match = _CRITERION.match(token)
        if match is None:
            raise QueryError(f"'{token}' is not a study criterion: names, NHS numbers and dates of birth are not "
                             f"searched together with criteria. {CRITERIA_HELP}")
        name, value = match.group(1).lower(), match.group(2).strip()
        if name not in _CRITERIA:
            raise QueryError(f"'{name}:' is not a study criterion Mosaic knows. {CRITERIA_HELP}")
        if not value:
            raise QueryError(f"'{name}:' needs a value. {CRITERIA_HELP}")
        if name == "condition":
            if condition is not None:
                raise QueryError("Give one condition at most.")
            if not _SNOMED_ID.match(value):
                raise QueryError(f"'{value}' is not a SNOMED CT concept id (6 to 18 digits, e.g. 44054006).")
            condition = value
        elif name == "age":
            if age != (None, None):
                raise QueryError("Give one age band at most.")
            age = _age_band(value)
        else:
            for pid in value.split(","):
                if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", pid.strip().lower()):
                    raise QueryError(f"'{pid}' is not a practice id (lower-case letters, digits, - and _).")
                practices.append(pid.strip().lower())
    if condition is None and age == (None, None):
        raise QueryError(f"Give a condition or an age band to search by. {CRITERIA_HELP}")
    return PatientQuery(condition=condition, age_min=age[0], age_max=age[1], practices=tuple(dict.fromkeys(practices)))


def _age_band(value: str) -> tuple[int | None, int | None]:
    match = re.fullmatch(r"(\d{1,3})(?:(-)(\d{1,3})|(\+))?", value)
    if match is None:
        raise QueryError(f"'age:{value}' is not an age band: write age:40-60, age:65+ or age:50.")
    low = int(match.group(1))
    high = None if match.group(4) else int(match.group(3)) if match.group(2) else low
    if low > MAX_AGE or (high is not None and (high > MAX_AGE or high < low)):
        raise QueryError(f"'age:{value}' is not an age band: from 0 to {MAX_AGE} years, the lower age first.")
    return low, high


def parse_query(text: str) -> PatientQuery:
    raw = text.strip()
    if not raw:
        raise QueryError("Type an NHS number, a name (family name first) or a date of birth.")
    if looks_like_criteria(raw):
        return parse_criteria(raw)
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
