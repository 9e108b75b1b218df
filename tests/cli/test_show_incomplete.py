"""Issue 11, class 4: plain `mosaic show` says "Record incomplete" under the banner whenever a section failed, as
the window's banner does; and a section a practice's system never sent at all reads as could not be loaded in
the text and in --json (as the banner counts it), never as "not provided" or "none recorded"."""

from __future__ import annotations

import dataclasses

from app.cli.render import render_record
from app.core.model import Section, SectionName
from app.core.serialise import record_json
from tests.cli.test_show_record_facts import PRACTICE
from tests.record_facts_sample import sample_record


def test_a_failed_section_says_record_incomplete_under_the_banner() -> None:
    record = sample_record()
    assert "RECORD INCOMPLETE" not in render_record(record, PRACTICE)
    failed = {**record.sections, SectionName.MEDICATIONS: Section.failed(SectionName.MEDICATIONS, "timed out")}
    lines = render_record(dataclasses.replace(record, sections=failed), PRACTICE).splitlines()
    incomplete = next(i for i, line in enumerate(lines) if "RECORD INCOMPLETE" in line)
    assert "MEDICATIONS COULD NOT BE LOADED" in lines[incomplete]
    assert incomplete < next(i for i, line in enumerate(lines) if line.startswith("== "))  # before any section


def test_a_section_never_sent_is_a_failure_in_text_and_json() -> None:
    record = sample_record()
    missing = {name: s for name, s in record.sections.items() if name is not SectionName.ALLERGIES}
    record = dataclasses.replace(record, sections=missing)
    text = render_record(record, PRACTICE)
    allergies = text.split("== Allergies and adverse reactions ==")[1].split("==")[0]
    assert "COULD NOT LOAD" in allergies and "Not provided" not in allergies and "None recorded" not in allergies
    assert "RECORD INCOMPLETE: ALLERGIES COULD NOT BE LOADED" in text
    assert record_json(record)["sections"]["allergies"]["status"] == "failed"


def test_the_summary_export_says_a_withheld_section_as_the_policy_withholds_it() -> None:
    from app.core.record_export import summary_html

    record = sample_record()
    withheld = {**record.sections, SectionName.ENCOUNTERS: Section.withheld(SectionName.ENCOUNTERS)}
    record = dataclasses.replace(record, sections=withheld)
    clinician = summary_html(record, PRACTICE)
    assert "Not shown under the access policy for your role." in clinician and "for this study" not in clinician
    research = dataclasses.replace(record, patient=dataclasses.replace(record.patient, pseudonym="R-AAAA-BBBB-CCCC"))
    assert "Withheld for this study." in summary_html(research, PRACTICE)
