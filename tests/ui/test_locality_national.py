"""The Locality view's national files read in a child process (app/ui/locality/national.py), and the collector
paused over a refresh (app/ui/locality/source.py): the same figures as reading them here, errors raised here by
name, a child given up is ended, and the collector is as it was after the pause."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.insight.csv_stream import UnreadableFile
from app.insight.gpad import read_national
from app.ui.locality import national
from app.ui.locality.national import NationalRead, demo_files


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gpad")


@pytest.fixture(scope="module")
def files(folder: Path) -> list[Path]:
    from app.demo.gpad_synthetic import ensure_synthetic_gpad

    return list(ensure_synthetic_gpad(folder / "small", count=12).all)


def read(source: national.NationalFiles) -> tuple[list[str], list[object], object]:
    reading = NationalRead(source)
    try:
        return reading.files(), *reading.result()  # type: ignore[return-value]
    finally:
        reading.close()


def test_a_source_that_pickles_is_called_and_read_in_a_child(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(national, "CHUNK", 700)  # in this process only: the child sends its own CHUNK
    source = demo_files(folder / "demo")
    reading = NationalRead(source)
    try:
        assert reading._proc is not None  # a child reads them
        names = reading.files()
        figures, report = reading.result()
    finally:
        reading.close()
    assert names and all(Path(n).parent == folder / "demo" for n in names)  # written by the child
    here, here_report = read_national(names)
    assert figures == here and len(figures) > national.CHUNK  # more than one message, nothing lost or doubled
    assert report.rows_read == here_report.rows_read and report.attributes == here_report.attributes


def test_a_lambda_is_called_here_and_the_files_read_in_a_child(files: list[Path]) -> None:
    called: list[int] = []

    def source() -> list[Path]:
        called.append(1)
        return files

    names, figures, report = read(source)
    assert called == [1] and names == [str(p) for p in files]
    here, here_report = read_national(files)
    assert figures == here
    assert report.rows_read == here_report.rows_read > 0  # type: ignore[attr-defined]


def test_what_the_child_cannot_read_is_raised_here_by_name(tmp_path: Path) -> None:
    not_gpad = tmp_path / "other.csv"
    not_gpad.write_text("A,B\n1,2\n", encoding="utf-8")
    with pytest.raises(UnreadableFile, match="other.csv"):
        read(lambda: [not_gpad])
    with pytest.raises(FileNotFoundError):
        read(lambda: [tmp_path / "missing.csv"])


def test_a_read_given_up_ends_its_child(files: list[Path]) -> None:
    reading = NationalRead(lambda: files)
    proc = reading._proc
    assert proc is not None
    reading.close()
    assert proc.poll() is not None


def test_without_a_child_the_files_are_read_here(files: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(national, "_start_child", lambda request: None)  # as in a frozen bundle
    names, figures, _report = read(lambda: files)
    assert figures == read_national(names)[0]


def test_the_refresh_pause_outlasts_a_reads_own_and_restores_the_collector() -> None:
    from adapters.fhir_r4.activity import collector_paused

    assert gc.isenabled()
    with collector_paused():  # the view's refresh (LocalitySource.refresh)
        with collector_paused():  # a practice's read, ending inside the refresh
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_prepare_imports_the_views_modules() -> None:
    """In a fresh interpreter: this one has imported the view's modules already."""
    code = ("import sys; import app.ui.locality as view; assert 'app.ui.locality.window' not in sys.modules; "
            "view.prepare(); assert {'app.ui.locality.window', 'app.ui.locality.charts'} <= set(sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stderr
