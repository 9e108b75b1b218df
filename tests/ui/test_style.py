"""The window's drawn pieces: practice swatches and the app icon."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QImage

from app.ui import style

pytestmark = pytest.mark.gui


def _rim(image: QImage) -> list[tuple[int, int, int, int]]:
    """The colour of the middle pixel of each side: left, right, top, bottom."""
    n, mid = image.width(), image.width() // 2
    return [image.pixelColor(x, y).getRgb() for x, y in ((0, mid), (n - 1, mid), (mid, 0), (mid, n - 1))]


@pytest.mark.parametrize("size", [10, 14, 20])
def test_a_swatch_has_the_same_crisp_rim_on_every_side(qapp, size: int) -> None:
    """Drawn on the half-pixel, the rim fills one whole pixel on each side; drawn at whole-pixel
    coordinates (a float rectangle passed as ints) the right and bottom rims were half transparent."""
    rim = _rim(style.swatch_pixmap("#ae2573", size).toImage())
    assert len(set(rim)) == 1, rim
    assert rim[0][3] == 255, rim
