"""Who the demo practices are: ids, names, ODS-style codes, colours, sign-in methods and staff."""

from __future__ import annotations

import colorsys
import random
import string
from dataclasses import dataclass

from app.core.model import AuthKind
from app.demo.vocab import (
    FAMILY_NAMES,
    FEMALE_NAMES,
    MALE_NAMES,
    PRACTICE_PLACE_NAMES,
    PRACTICE_SUFFIXES,
    TOWNS,
)

#: the first five, as the demo shows them; more are generated
_FIRST_FIVE: tuple[tuple[str, str], ...] = (
    ("riverside", "Riverside Surgery"),
    ("oakwood", "Oakwood Medical Centre"),
    ("millbrook", "Millbrook Health Centre"),
    ("castlegate", "Castlegate Practice"),
    ("hillview", "Hillview Family Practice"),
)

#: sign-in method by index modulo 5: mostly Basic, one static bearer token, one OAuth2 client
_AUTH_CYCLE: tuple[AuthKind, ...] = ("basic", "basic", "basic", "bearer", "client-credentials")

#: NHS identity palette colours with at least 4.5:1 contrast against white (readable as text or badge)
_PALETTE: tuple[str, ...] = (
    "#005eb8",  # NHS Blue
    "#007f3b",  # NHS Green
    "#330072",  # NHS Purple
    "#ae2573",  # NHS Pink
    "#a44e00",  # a dark NHS-orange (#ed8b00 itself is only 2.6:1 on white)
    "#003087",  # NHS Dark Blue
    "#8a1538",  # NHS Dark Red
    "#006747",  # NHS Dark Green
    "#7c2855",  # NHS Plum
    "#425563",  # NHS Dark Grey
)

BASIC_USERNAME = "mosaic"


@dataclass(frozen=True)
class PracticeSpec:
    """Everything about a demo practice that does not depend on the port it ends up on."""

    index: int
    id: str
    name: str
    ods_code: str
    colour: str
    auth: AuthKind
    town: str
    supports_everything: bool
    clinicians: tuple[str, ...]
    nurses: tuple[str, ...]

    @property
    def username(self) -> str | None:
        return BASIC_USERNAME if self.auth == "basic" else None

    @property
    def client_id(self) -> str | None:
        return f"mosaic-{self.id}" if self.auth == "client-credentials" else None


def practice_specs(count: int, seed: int = 0) -> list[PracticeSpec]:
    """`count` practices, the same every time for the same seed."""
    if count < 1:
        raise ValueError("a demo network needs at least one practice")
    rng = random.Random(f"practices:{seed}")
    specs: list[PracticeSpec] = []
    used_ids: set[str] = set()
    for index in range(count):
        pid, name = _identity(index, used_ids)
        used_ids.add(pid)
        specs.append(PracticeSpec(
            index=index,
            id=pid,
            name=name,
            ods_code=f"Y9{1001 + index * 37:04d}",
            colour=practice_colour(index),
            auth=_AUTH_CYCLE[index % len(_AUTH_CYCLE)],
            town=TOWNS[index % len(TOWNS)][0],
            supports_everything=index % 2 == 0,
            clinicians=tuple(f"Dr {_person(rng)}" for _ in range(rng.randint(3, 6))),
            nurses=tuple(f"{_person(rng)} (Practice Nurse)" for _ in range(2)),
        ))
    return specs


def make_secret(seed: int, practice_id: str) -> str:
    """A password, token or client secret: random-looking, but the same for the same seed."""
    rng = random.Random(f"secret:{seed}:{practice_id}")
    alphabet = string.ascii_letters + string.digits
    return "".join(rng.choice(alphabet) for _ in range(24))


def practice_colour(index: int) -> str:
    """A distinct colour per practice; beyond the palette, hues spaced by the golden angle, kept dark
    enough for 4.5:1 contrast against white."""
    if index < len(_PALETTE):
        return _PALETTE[index]
    hue = (index * 0.381966) % 1.0
    lightness = 0.42
    while lightness > 0.1:
        r, g, b = colorsys.hls_to_rgb(hue, lightness, 0.75)
        colour = "#{:02x}{:02x}{:02x}".format(*(round(c * 255) for c in (r, g, b)))
        if contrast_with_white(colour) >= 4.5:
            return colour
        lightness -= 0.02
    return "#333333"


def contrast_with_white(colour: str) -> float:
    """WCAG 2 contrast ratio between `colour` (#rrggbb) and white."""
    def channel(hex2: str) -> float:
        c = int(hex2, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(colour[i:i + 2]) for i in (1, 3, 5))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return 1.05 / (luminance + 0.05)


def _identity(index: int, used: set[str]) -> tuple[str, str]:
    if index < len(_FIRST_FIVE):
        return _FIRST_FIVE[index]
    extra = index - len(_FIRST_FIVE)
    place = PRACTICE_PLACE_NAMES[extra % len(PRACTICE_PLACE_NAMES)]
    suffix = PRACTICE_SUFFIXES[extra % len(PRACTICE_SUFFIXES)]
    rounds = extra // len(PRACTICE_PLACE_NAMES)
    name = f"{place} {suffix}" if rounds == 0 else f"{place} {suffix} ({rounds + 1})"
    base = "".join(ch for ch in place.lower() if ch.isalnum())
    pid = base if rounds == 0 else f"{base}-{rounds + 1}"
    while pid in used:
        pid += "x"
    return pid, name


def _person(rng: random.Random) -> str:
    given = rng.choice(FEMALE_NAMES if rng.random() < 0.5 else MALE_NAMES)
    return f"{given} {rng.choice(FAMILY_NAMES)}"
