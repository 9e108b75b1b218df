"""Issue 11, class 5: a record summary written to a file (Save as PDF, Print to file).

The file is a new user-only (0600) file that replaces what was at the path in one step: never half written,
never written into an existing file (whose mode and owner would stay: a world-readable file, another
account's file), never through a link to somewhere else.
"""

from __future__ import annotations

import os
import stat
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from app.core import paths
from app.core.model import PatientRecord, PatientSummary, Practice, Section, SectionName

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The user's chosen folder (tmp_path also holds the test's MOSAIC_HOME)."""
    chosen = tmp_path / "exports"
    chosen.mkdir()
    return chosen


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_pdf_replaces_a_world_readable_file_rather_than_writing_into_it(folder):
    target = folder / "summary.pdf"
    target.write_bytes(b"old")
    target.chmod(0o644)
    other_name = folder / "hard-link.pdf"
    os.link(target, other_name)  # the old inode, as anyone who could read it still sees it
    paths.write_private_bytes(target, b"%PDF-new")
    assert target.read_bytes() == b"%PDF-new" and _mode(target) == 0o600
    assert other_name.read_bytes() == b"old"  # the old file was not written into
    assert sorted(p.name for p in folder.iterdir()) == ["hard-link.pdf", "summary.pdf"]  # no part file left


def test_a_link_at_the_path_is_replaced_not_followed(folder):
    elsewhere = folder / "elsewhere.txt"
    elsewhere.write_bytes(b"not yours")
    elsewhere.chmod(0o644)
    link = folder / "summary.pdf"
    link.symlink_to(elsewhere)
    paths.write_private_bytes(link, b"%PDF-new")
    assert not link.is_symlink() and link.read_bytes() == b"%PDF-new" and _mode(link) == 0o600
    assert elsewhere.read_bytes() == b"not yours" and _mode(elsewhere) == 0o644


def test_a_write_that_fails_leaves_the_old_file_whole_and_no_part_file(folder, monkeypatch):
    target = folder / "summary.pdf"
    target.write_bytes(b"%PDF-old")

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        paths.write_private_bytes(target, b"%PDF-new")
    assert target.read_bytes() == b"%PDF-old"
    assert [p.name for p in folder.iterdir()] == ["summary.pdf"]


def test_print_to_file_is_written_whole_and_user_only(qapp, folder):
    from PySide6.QtPrintSupport import QPrinter

    from app.ui.record_export import print_to

    patient = PatientSummary("riverside", "rec-1", "9434765919", "Smith", ("Jane",), date(1950, 3, 12), "female",
                             None)
    record = PatientRecord(patient, {SectionName.PROBLEMS: Section.loaded(SectionName.PROBLEMS, [])},
                           datetime(2026, 1, 1, tzinfo=UTC))
    practice = Practice("riverside", "Riverside Surgery", "B86001", "fhir-r4", "http://127.0.0.1:1/fhir")
    elsewhere = folder / "shared.pdf"
    elsewhere.write_bytes(b"")
    elsewhere.chmod(0o666)
    target = folder / "printed.pdf"
    target.symlink_to(elsewhere)
    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    printer.setOutputFileName(str(target))
    printer.setDocName("SMITH, Jane")  # whatever was there: the queue's job name never names the patient
    print_to(record, practice, printer)
    assert printer.docName() == "Mosaic record summary"
    assert not target.is_symlink() and target.read_bytes().startswith(b"%PDF") and _mode(target) == 0o600
    assert elsewhere.read_bytes() == b""


def test_an_audit_export_replaces_another_accounts_style_file_rather_than_writing_into_it(folder):
    """`mosaic audit export --output` and the access history's export: the same rule as a summary."""
    target = folder / "audit.csv"
    target.write_text("old")
    target.chmod(0o666)
    paths.write_private_text(target, "patient,9434765919\n")
    assert target.read_text() == "patient,9434765919\n" and _mode(target) == 0o600
    part = folder / "history.csv.part"  # the name the access history's export wrote through before
    elsewhere = folder / "elsewhere"
    elsewhere.write_text("")
    part.symlink_to(elsewhere)
    paths.write_private_bytes(folder / "history.csv", b"rows")
    assert elsewhere.read_text() == "" and (folder / "history.csv").read_bytes() == b"rows"
