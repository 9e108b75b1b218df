"""The research view and the record facts of issue 11: what may be shown (groups, values, report titles,
severity, the fact of death) and what never is (notes, reactions, address, registration, the date of death)."""

from __future__ import annotations

import json
from datetime import date

from app.core.model import SectionName
from app.core.research import WITHHELD_TEXT, pseudonymise_record
from app.core.serialise import record_json
from tests.record_facts_sample import NOTES, REACTION, sample_record

PSEUDONYM = "R-7K3Q-M2XD-9FJA"


def test_notes_reaction_address_registration_and_date_of_death_never_appear() -> None:
    reduced = pseudonymise_record(sample_record(date(2024, 1, 3)), PSEUDONYM)
    text = json.dumps(record_json(reduced), ensure_ascii=False)
    for identifying in (NOTES, "chest pain", REACTION, "hives", "South Street", "LS12", "Leeds", "Samira",
                        "Riverside Surgery", "Y91001", "2024-01-03", "2002-08-09", "Okafor", "9434765919", "r-77"):
        assert identifying not in text, identifying
    patient = reduced.patient
    assert (patient.address, patient.registration, patient.deceased) == (None, None, True)
    assert all(e.notes is None for e in reduced.sections[SectionName.ENCOUNTERS].entries)


def test_groups_values_report_titles_and_severity_are_kept() -> None:
    reduced = pseudonymise_record(sample_record(), PSEUDONYM).sections
    # an uncoded medicine's name is withheld; its group, in known words only, is kept
    assert [(e.text, e.group) for e in reduced[SectionName.MEDICATIONS].entries] == [(WITHHELD_TEXT, "repeat"),
                                                                                   (WITHHELD_TEXT, "past")]
    assert reduced[SectionName.PROBLEMS].entries[0].group == "active"
    (allergy,) = reduced[SectionName.ALLERGIES].entries
    assert (allergy.severity, allergy.reaction, allergy.detail) == ("severe", None, None)
    report, cholesterol, hdl = reduced[SectionName.OBSERVATIONS].entries
    # the report's title is its code's own term (the sender's title text may be free text)
    assert {e.report for e in (report, cholesterol, hdl)} == {report.coding.display} == {"Lipid panel"}
    assert {e.report_id for e in (report, cholesterol, hdl)} == {"report-1"}  # still grouped, not the practice's id
    (value,) = cholesterol.measurements
    assert (value.value, value.unit, value.high, value.flag) == (6.4, "mmol/L", 5.0, "H")


def test_a_living_patient_stays_not_deceased() -> None:
    assert pseudonymise_record(sample_record(False), PSEUDONYM).patient.deceased is False
