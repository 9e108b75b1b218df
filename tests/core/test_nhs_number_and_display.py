from datetime import UTC, date, datetime

import pytest

from app.core import nhs_number
from app.core.display import display_name, format_age, format_date, format_datetime, format_partial_date
from app.core.model import PatientSummary


@pytest.mark.parametrize("number", ["9434765919", "943 476 5919", "943-476-5919", "9990000018"])
def test_valid_nhs_numbers_pass_modulus_11(number: str) -> None:
    assert nhs_number.is_valid(number)


@pytest.mark.parametrize("number", ["9434765918", "943476591", "94347659190", "943476591X", "", "0000000001"])
def test_invalid_nhs_numbers_fail(number: str) -> None:
    assert not nhs_number.is_valid(number)


def test_check_digit_ten_means_no_valid_number() -> None:
    # 0000000060: weights give a remainder of 1, so 11 - 1 = 10, which no NHS number may use
    assert nhs_number.check_digit("000000006") is None
    assert nhs_number.check_digit("943476591") == 9


def test_nhs_number_display_form() -> None:
    assert nhs_number.format_nhs_number("9434765919") == "943 476 5919"
    assert nhs_number.format_nhs_number("943 476 5919") == "943 476 5919"
    assert nhs_number.format_nhs_number("abc") == "abc"
    assert nhs_number.format_nhs_number(None) == ""


def test_dates_in_nhs_cui_style() -> None:
    assert format_date(date(1975, 3, 12)) == "12-Mar-1975"
    assert format_date(None) == ""
    assert format_partial_date("1998") == "1998"
    assert format_partial_date("2001-04") == "Apr-2001"
    assert format_partial_date("2001-04-05") == "05-Apr-2001"
    assert format_partial_date("not a date") == "not a date"
    shown = format_datetime(datetime(2026, 3, 12, 14, 5, tzinfo=UTC))
    assert shown.startswith("12-Mar-2026")


def test_ages_as_clinicians_read_them() -> None:
    today = date(2026, 11, 22)
    assert format_age(date(1975, 3, 12), today) == "51y"
    assert format_age(date(1975, 11, 23), today) == "50y"
    assert format_age(date(2026, 1, 1), today) == "10m"
    assert format_age(date(2026, 11, 1), today) == "3w"
    assert format_age(date(2026, 11, 20), today) == "2d"


def test_display_name_is_family_upper_then_given() -> None:
    p = PatientSummary("x", "1", None, "Smith-Jones", ("Mary", "Ann"), None, "female", None)
    assert display_name(p) == "SMITH-JONES, Mary Ann"
    nameless = PatientSummary("x", "1", None, "", (), None, None, None)
    assert display_name(nameless) == "(NO FAMILY NAME)"
