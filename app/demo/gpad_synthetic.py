"""Synthetic national context for `mosaic demo`: ~100 other practices in NHS England's published formats.

Written, seeded, in exactly the published layouts that app/insight/gpad.py and practice_attributes.py read
(see their docstrings for the sources): one GPAD practice-level CSV per month
("Practice_Level_Crosstab_<Mon>_<YY>.csv", APPOINTMENT_MONTH_START_DATE "01OCT2025", the two spaces in
"8  to 14 Days"), NHS Digital's gp-reg-pat-prac-quin-age.csv for list size and age mix, and Mosaic's practice
attributes CSV (IMD decile, rurality). All practices, names and codes are fictional ("Y7…" codes, which no
real practice has).

Spreads as the issue asks and as GPAD shows nationally: list sizes 3,000–25,000; DNA 3–8 % of attended + DNA;
same day 35–50 %; face to face 55–72 %, telephone 20–35 %, video 1–4 %, home visits about 1 %; a GP for
40–55 %; 0.3–0.5 appointments per patient a month with a winter rise.

Generated when the demo starts, into its data folder, not shipped: two years for 100 practices is ~380,000
rows (~63 MB) of CSV, too big to commit, and the demo's two years move with the date, so a shipped file would
soon stop matching its appointment books. Writing takes a few seconds, once (`ensure_synthetic_gpad` keeps
what it wrote for the same seed, months and count).
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from app.demo.vocab import PRACTICE_PLACE_NAMES, PRACTICE_SUFFIXES
from app.insight.gpad import BANDS

GPAD_COLUMNS = ("APPOINTMENT_MONTH_START_DATE", "GP_CODE", "GP_NAME", "SUPPLIER", "PCN_CODE", "PCN_NAME",
                "SUB_ICB_LOCATION_CODE", "SUB_ICB_LOCATION_NAME", "HCP_TYPE", "APPT_MODE", "NATIONAL_CATEGORY",
                "TIME_BETWEEN_BOOK_AND_APPT", "COUNT_OF_APPOINTMENTS", "APPT_STATUS")
REGISTERED_COLUMNS = ("PUBLICATION", "EXTRACT_DATE", "ORG_TYPE", "ORG_CODE", "ONS_CODE", "POSTCODE", "SEX",
                      "AGE_GROUP_5", "NUMBER_OF_PATIENTS")
ATTRIBUTE_COLUMNS = ("PRACTICE_CODE", "IMD_DECILE", "RURALITY")

STATUSES = ("Attended", "DNA", "Unknown")
HCP_TYPES = ("GP", "Other Practice staff", "Unknown")
MODES = ("Face-to-Face", "Telephone", "Video Conference/Online", "Home Visit", "Unknown")
AGE_BANDS = tuple(f"{a}_{a + 4}" for a in range(0, 95, 5)) + ("95+",)
SUPPLIERS = ("EMIS", "TPP")
#: a fixed England-like age pyramid (share of a list by 5-year band), tilted per practice
_AGE_SHAPE = (5.2, 5.8, 5.9, 5.6, 6.0, 6.6, 7.0, 6.9, 6.5, 6.4, 6.7, 6.6, 5.9, 5.1, 4.7, 3.6, 2.4, 1.4, 0.6, 0.2)
DEFAULT_COUNT = 100


def demo_months(today: date | None = None, count: int = 24) -> list[date]:
    """The `count` whole months before `today`'s month (the demo's two years of appointment books)."""
    today = today or date.today()
    year, month = today.year, today.month
    out: list[date] = []
    for _ in range(count):
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        out.append(date(year, month, 1))
    return sorted(out)


@dataclass(frozen=True)
class SyntheticPractice:
    code: str
    name: str
    list_size: int
    dna_rate: float
    same_day: float
    rate: float  # appointments per patient per month, before the winter rise
    gp_share: float
    modes: tuple[float, ...]
    imd_decile: int
    rural: bool
    older: float  # tilts the age pyramid: > 1 an older list


@dataclass(frozen=True)
class SyntheticFiles:
    gpad: tuple[Path, ...]
    registered: Path
    attributes: Path

    @property
    def all(self) -> list[Path]:
        return [*self.gpad, self.registered, self.attributes]


def synthetic_practices(count: int = DEFAULT_COUNT, seed: int = 0) -> list[SyntheticPractice]:
    rng = random.Random(f"gpad-practices:{seed}")
    out: list[SyntheticPractice] = []
    for i in range(count):
        place = PRACTICE_PLACE_NAMES[i % len(PRACTICE_PLACE_NAMES)]
        suffix = PRACTICE_SUFFIXES[(i * 7) % len(PRACTICE_SUFFIXES)]
        name = f"{place} {suffix}" + (f" ({i // len(PRACTICE_PLACE_NAMES) + 1})" if i >= len(PRACTICE_PLACE_NAMES)
                                     else "")
        video, home = rng.uniform(0.01, 0.04), rng.uniform(0.005, 0.015)
        telephone = rng.uniform(0.20, 0.35)
        unknown = rng.uniform(0.01, 0.04)
        modes = (1 - video - home - telephone - unknown, telephone, video, home, unknown)
        rural = rng.random() < 0.25
        out.append(SyntheticPractice(
            code=f"Y7{1001 + i * 13:04d}", name=name.upper(),
            list_size=int(round(3000 * (25000 / 3000) ** rng.random(), -1)),
            dna_rate=rng.uniform(0.03, 0.08), same_day=rng.uniform(0.35, 0.50), rate=rng.uniform(0.30, 0.50),
            gp_share=rng.uniform(0.40, 0.55), modes=modes, imd_decile=rng.randint(1, 10), rural=rural,
            older=rng.uniform(1.0, 1.6) if rural else rng.uniform(0.7, 1.2)))
    return out


def _band_shares(same_day: float) -> list[float]:
    """Same Day, 1 Day, 2-7, 8-14, 15-21, 22-28, >28, Unknown: the rest after same day spread as GPAD does."""
    unknown = 0.012
    rest = 1 - same_day - unknown
    spread = (0.14, 0.38, 0.22, 0.12, 0.07, 0.07)
    return [same_day, *(rest * s for s in spread), unknown]


def _category(hcp: str, mode: str, band: int) -> str:
    """A national category that fits the row (GPAD's practice-level file has one per row)."""
    if mode == "Home Visit":
        return "Home Visit"
    if hcp == "Unknown" or mode == "Unknown":
        return "Unmapped"
    if band == 0:
        return "Clinical Triage" if mode == "Telephone" else "General Consultation Acute"
    return "General Consultation Routine" if hcp == "GP" else "Planned Clinics"


def _month_cells(p: SyntheticPractice, month: date, rng: np.random.Generator) -> list[tuple[int, str, str, int, str]]:
    """(count, hcp, mode, band, status) for one practice-month, zero cells left out as GPAD leaves them."""
    winter = 1 + 0.12 * np.cos((month.month - 1) / 12 * 2 * np.pi)
    total = int(rng.poisson(p.list_size * p.rate * winter))
    unknown_status = 0.04
    status = (1 - unknown_status) * np.array([1 - p.dna_rate, p.dna_rate])
    status_shares = [*status, unknown_status]
    hcp_shares = [p.gp_share, 0.96 - p.gp_share, 0.04]
    probabilities = np.einsum("a,b,c,d->abcd", np.array(status_shares), np.array(hcp_shares),
                              np.array(p.modes), np.array(_band_shares(p.same_day))).ravel()
    counts = rng.multinomial(total, probabilities / probabilities.sum())
    cells: list[tuple[int, str, str, int, str]] = []
    for flat in np.flatnonzero(counts):
        s, h, m, b = np.unravel_index(flat, (3, 3, 5, len(BANDS)))
        cells.append((int(counts[flat]), HCP_TYPES[h], MODES[m], int(b), STATUSES[s]))
    return cells


def write_synthetic_gpad(folder: Path, months: Sequence[date] | None = None, *, count: int = DEFAULT_COUNT,
                         seed: int = 0) -> SyntheticFiles:
    """Write the three kinds of file into `folder`, the same bytes for the same arguments."""
    months = sorted(months or demo_months())
    folder.mkdir(parents=True, exist_ok=True)
    practices = synthetic_practices(count, seed)
    rng = np.random.default_rng([seed, 13])
    gpad_files: list[Path] = []
    for month in months:
        path = folder / f"Practice_Level_Crosstab_{month:%b_%y}.csv"
        stamp = month.strftime("%d%b%Y").upper()
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")
            writer.writerow(GPAD_COLUMNS)
            for i, p in enumerate(practices):
                pcn = f"U{70001 + i // 5}"
                sub_icb = ("99A", "NHS Synthetic ICB - 99A") if i % 2 else ("99B", "NHS Synthetic ICB - 99B")
                for n, hcp, mode, band, status in _month_cells(p, month, rng):
                    writer.writerow((stamp, p.code, p.name, SUPPLIERS[i % 2], pcn, f"SYNTHETIC PCN {i // 5 + 1}",
                                     sub_icb[0], sub_icb[1], hcp, mode, _category(hcp, mode, band), BANDS[band],
                                     n, status))
        gpad_files.append(path)
    registered = _write_registered(folder / "gp-reg-pat-prac-quin-age.csv", practices, months[-1])
    attributes = folder / "practice-attributes.csv"
    with attributes.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(ATTRIBUTE_COLUMNS)
        for p in practices:
            writer.writerow((p.code, p.imd_decile, "rural" if p.rural else "urban"))
    return SyntheticFiles(tuple(gpad_files), registered, attributes)


def _write_registered(path: Path, practices: Sequence[SyntheticPractice], month: date) -> Path:
    extract = month.strftime("%d%b%Y").upper()
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(REGISTERED_COLUMNS)
        for p in practices:
            weights = [w * (p.older ** (i / len(_AGE_SHAPE) * 2 - 0.5)) for i, w in enumerate(_AGE_SHAPE)]
            scale = p.list_size / sum(weights)
            bands = [int(w * scale) for w in weights]
            bands[6] += p.list_size - sum(bands)  # whole people, adding up to the list size
            row = ("GP_PRAC_PAT_LIST", extract, "GP", p.code, "E38000999", "ZZ99 9ZZ")
            writer.writerow((*row, "ALL", "ALL", p.list_size))
            for band, people in zip(AGE_BANDS, bands, strict=True):
                writer.writerow((*row, "ALL", band, people))
    return path


def ensure_synthetic_gpad(folder: Path, months: Sequence[date] | None = None, *, count: int = DEFAULT_COUNT,
                          seed: int = 0) -> SyntheticFiles:
    """The demo's synthetic files in `folder`, written only when missing or made for other arguments."""
    months = sorted(months or demo_months())
    key = {"months": [m.isoformat() for m in months], "count": count, "seed": seed, "format": 1}
    stamp = folder / "synthetic-gpad.json"
    expected = SyntheticFiles(tuple(folder / f"Practice_Level_Crosstab_{m:%b_%y}.csv" for m in months),
                              folder / "gp-reg-pat-prac-quin-age.csv", folder / "practice-attributes.csv")
    if stamp.exists() and json.loads(stamp.read_text()) == key and all(p.exists() for p in expected.all):
        return expected
    files = write_synthetic_gpad(folder, months, count=count, seed=seed)
    stamp.write_text(json.dumps(key))
    return files
