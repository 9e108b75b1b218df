"""mosaic show's record facts (issue 11): --json's patient.deceased / address / registration and the entries'
group, measurements, report, notes, reaction and severity; plain text marks a death and abnormal results."""

from __future__ import annotations

import json
from datetime import date

import pytest

from app.cli import _patient_row
from app.cli.render import render_record
from app.core.model import Practice
from app.core.serialise import record_json
from tests.record_facts_sample import NOTES, REACTION, sample_record

PRACTICE = Practice("riverside", "Riverside Surgery", "Y91001", "fhir-r4", "http://localhost")


def show_json(record) -> dict:  # what cmd_show prints
    data = record_json(record)
    data["patient"] = _patient_row(record.patient)
    return json.loads(json.dumps(data))


@pytest.mark.parametrize(("deceased", "expected"), [(date(2024, 1, 3), "2024-01-03"), (True, True), (False, None)])
def test_patient_deceased_is_the_iso_date_true_or_null(deceased: object, expected: object) -> None:
    assert show_json(sample_record(deceased))["patient"]["deceased"] == expected  # type: ignore[arg-type]


def test_patient_address_and_registration_are_objects() -> None:
    patient = show_json(sample_record())["patient"]
    assert patient["address"] == {"lines": ["29 South Street"], "city": "Leeds", "district": None,
                                  "postcode": "LS12 9PP", "text": "29 South Street, Leeds, LS12 9PP"}
    assert patient["registration"] == {"practice_ods": "Y91001", "practice_name": "Riverside Surgery",
                                       "gp": "Dr Samira Martin", "kind": "Regular", "since": "2002-08-09",
                                       "branch": None}


def test_entries_carry_group_values_report_notes_reaction_and_severity() -> None:
    sections = show_json(sample_record())["sections"]
    assert [e["group"] for e in sections["medications"]["entries"]] == ["repeat", "past"]
    assert sections["problems"]["entries"][0]["group"] == "active"
    (allergy,) = sections["allergies"]["entries"]
    assert (allergy["reaction"], allergy["severity"]) == (REACTION, "severe")
    assert sections["encounters"]["entries"][0]["notes"] == NOTES
    cholesterol = sections["observations"]["entries"][1]
    assert (cholesterol["report"], cholesterol["report_id"]) == ("Lipid profile", "r-77")
    assert cholesterol["measurements"] == [{"name": "Total cholesterol", "value": 6.4, "unit": "mmol/L", "text": None,
                                            "low": None, "high": 5.0, "range_text": None, "flag": "H",
                                            "code": "1005671000000105"}]


def test_plain_show_marks_a_death_and_flags_abnormal_results() -> None:
    lines = render_record(sample_record(), PRACTICE).splitlines()
    assert lines[0] == "OKAFOR, Chinedu (Mr)   *** DECEASED ***" or lines[0].endswith("*** DECEASED ***")
    assert "Died 03-Jan-2024 (aged 82y)" in lines[1] and "NHS No. 943 476 5919" in lines[1]
    assert "Address 29 South Street, Leeds, LS12 9PP" in lines
    assert any(line.strip() == "! ABNORMAL ▲ High: Total cholesterol 6.4 mmol/L (range < 5)" for line in lines)
    assert not any("HDL" in line and "ABNORMAL" in line for line in lines)  # in range: no flag
    alive = render_record(sample_record(False), PRACTICE).splitlines()
    assert "DECEASED" not in alive[0] and "Died" not in alive[1]


def test_plain_show_says_statuses_in_clinical_words_never_the_senders_codes() -> None:
    record = sample_record()
    text = render_record(record, PRACTICE)
    codes = {e.status for s in record.sections.values() for e in s.entries if e.status}
    assert codes, "the sample has statuses to say"
    for code in codes:
        assert f"[{code}]" not in text and f"; {code}]" not in text, code
    assert "[Repeat medication]" in text and "[Past medication" in text
    assert "[Active problems]" in text
    allergy = next(line for line in text.splitlines() if "Penicillin" in line)
    assert "Severe" in allergy and allergy.count(REACTION) == 1  # reaction and severity, said once
    assert NOTES.splitlines()[0].strip() in text  # a consultation's notes under it


def test_plain_show_says_a_withheld_section_is_withheld_never_none_recorded() -> None:
    import dataclasses

    from app.core.model import Section, SectionName

    record = sample_record()
    sections = dict(record.sections, encounters=Section.withheld(SectionName.ENCOUNTERS))
    text = render_record(dataclasses.replace(record, sections=sections), PRACTICE)
    block = text.split("== Consultations and encounters ==")[1].split("==")[0]
    assert "Not shown under the access policy for your role." in block and "None recorded" not in block
    research = dataclasses.replace(record, sections=sections,
                                   patient=dataclasses.replace(record.patient, pseudonym="R-0000-0000-0000"))
    assert "Withheld for this study." in render_record(research, PRACTICE)
