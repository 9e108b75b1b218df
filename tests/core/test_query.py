from datetime import date

import pytest

from app.core.model import PatientQuery
from app.core.query import QueryError, nhs_number_problem, parse_query


def test_nhs_number_with_spaces() -> None:
    assert parse_query(" 943 476 5919 ") == PatientQuery(nhs_number="9434765919")


def test_invalid_nhs_number_is_refused_with_the_reason() -> None:
    with pytest.raises(QueryError, match="check digit"):
        parse_query("9434765918")
    assert "check digit" in (nhs_number_problem("943 476 5918") or "")
    assert "10 digits" in (nhs_number_problem("94347659") or "")
    assert nhs_number_problem("smith") is None
    assert nhs_number_problem("943 476 5919") is None


def test_family_first_then_given() -> None:
    assert parse_query("smith john") == PatientQuery(family="smith", given="john")
    assert parse_query("Smith, John Paul") == PatientQuery(family="Smith", given="John Paul")
    assert parse_query("O'Brien") == PatientQuery(family="O'Brien")


@pytest.mark.parametrize("text", ["12-Mar-1975", "12/03/1975", "12.03.1975", "1975-03-12"])
def test_birth_dates_in_common_forms(text: str) -> None:
    assert parse_query(text) == PatientQuery(birth_date=date(1975, 3, 12))


def test_name_and_birth_date_together() -> None:
    assert parse_query("smith 12/03/1975") == PatientQuery(family="smith", birth_date=date(1975, 3, 12))


@pytest.mark.parametrize("text", ["", "   ", "31/02/2000", "12/03/2999", "smith 1/1/2000 2/2/2000", "robert'); drop"])
def test_unsearchable_text_is_explained(text: str) -> None:
    with pytest.raises(QueryError):
        parse_query(text)
