"""NHS numbers: Modulus 11 validation and the 3-3-4 display form."""

from __future__ import annotations

import re

_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"


def normalise(text: str) -> str:
    """Strip the spaces and dashes people type; keep everything else so validation can reject it."""
    return re.sub(r"[\s-]", "", text)


def check_digit(first_nine: str) -> int | None:
    """The Modulus 11 check digit for nine digits, or None when no valid number has them."""
    total = sum(int(d) * w for d, w in zip(first_nine, _WEIGHTS, strict=True))
    check = 11 - (total % 11)
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def is_valid(text: str) -> bool:
    digits = normalise(text)
    if len(digits) != 10 or not digits.isdigit():
        return False
    return check_digit(digits[:9]) == int(digits[9])


def looks_like_nhs_number(text: str) -> bool:
    """True when the user evidently meant to type an NHS number (ten digits, maybe spaced)."""
    return bool(re.fullmatch(r"\d{3}[\s-]?\d{3}[\s-]?\d{4}", text.strip()))


def format_nhs_number(text: str | None) -> str:
    """'9434765919' -> '943 476 5919'; anything that is not ten digits is returned unchanged."""
    if not text:
        return ""
    digits = normalise(text)
    if len(digits) != 10 or not digits.isdigit():
        return text
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"
