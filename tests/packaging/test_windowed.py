"""`mosaic-window` (the gui-script) opens the window as `mosaic` does, even with no console streams (pythonw)."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import pytest

import app.cli
from app.cli import windowed


def test_mosaic_window_is_a_gui_script() -> None:
    (script,) = [ep for ep in entry_points(group="gui_scripts") if ep.name == "mosaic-window"]
    assert script.value == "app.cli.windowed:main"


def test_without_console_streams_it_runs_mosaic_with_no_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str] | None] = []

    def fake_main(argv: list[str] | None = None) -> int:
        calls.append(argv)
        print("a message nobody sees")  # would raise AttributeError on None
        print("an error nobody sees", file=sys.stderr)
        return 0

    monkeypatch.setattr(app.cli, "main", fake_main)
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    assert windowed.main() == 0
    assert calls == [[]]
    assert sys.stdout is not None and sys.stderr is not None
    sys.stdout.close()  # the null device, opened by main()
    sys.stderr.close()
