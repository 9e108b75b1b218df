"""What "similar practices" compares on: list size and age mix, deprivation and rurality, from published files.

* List size and age mix: NHS Digital, "Patients Registered at a GP Practice" (monthly), structural metadata at
  https://digital.nhs.uk/data-and-information/publications/statistical/patients-registered-at-a-gp-practice/metadata
  (read through a stored copy). Its files are read as published:
  gp-reg-pat-prac-quin-age.csv — PUBLICATION, EXTRACT_DATE, ORG_TYPE, ORG_CODE, ONS_CODE, POSTCODE, SEX,
  AGE_GROUP_5 ("0_4" … "90_94", "95+", "ALL"), NUMBER_OF_PATIENTS; the single-year files
  gp-reg-pat-prac-sing-age-{male,female}.csv (AGE "0" … "94", "95+", "ALL"); and gp-reg-pat-prac-all.csv
  (CODE, SEX "ALL", AGE "ALL": the list size alone). Rows whose ORG_TYPE is not "GP" (PCN, ICB …) are
  skipped. Share 65+ is exact from either; share under 18 is exact from single years and, from 5-year bands,
  counts 3/5 of "15_19" (an even spread inside the band, said here because it is an approximation).
  Columns as a public pipeline reads them: github openprescribing (fetch_and_import_patient_list_size) and an
  analysis that selects AGE_GROUP_5 "ALL", SEX "ALL" for the list size and 65+ from the bands.
* Deprivation: OHID Fingertips, National General Practice Profiles, indicator 93553 "Deprivation score
  (IMD 2019)" for area type 7 (GP practices) — https://fingertips.phe.org.uk/profile/general-practice — as its
  CSV export (columns "Indicator ID", "Area Code", "Area Type", "Time period", "Value"). The score is turned
  into deciles across the practices in the file (1 = most deprived tenth), so an export of all England's
  practices gives national deciles. Or Mosaic's own attributes CSV: PRACTICE_CODE, IMD_DECILE, RURALITY.
* Rurality: "urban" | "rural". No national practice-level file publishes it; Mosaic's attributes CSV takes the
  ONS Rural-Urban Classification of the practice's postcode (its words start with "Urban" or "Rural", which is
  all Mosaic keeps), or plain "urban" / "rural".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from app.insight.csv_stream import RowProblem, read_header, stream_rows, value_key
from app.insight.gpad import PROBLEMS_LISTED, parse_count, parse_month
from app.insight.national_model import PracticeAttributes

FINGERTIPS_IMD_INDICATOR = "93553"
_OPEN_ENDED = 200  # the upper age of "95+"


def is_registered_file(header: Iterable[str]) -> bool:
    names = set(header)
    return "NUMBER_OF_PATIENTS" in names and bool(names & {"ORG_CODE", "CODE"})


def is_attributes_file(header: Iterable[str]) -> bool:
    names = set(header)
    return "PRACTICE_CODE" in names or {"AREA_CODE", "VALUE"} <= names


def _age_range(text: str) -> tuple[int, int] | None:
    """'0_4' -> (0, 4); '37' -> (37, 37); '95+' -> (95, 200); None for 'ALL' or anything else."""
    cleaned = text.strip()
    if cleaned.endswith("+") and cleaned[:-1].isdigit():
        return int(cleaned[:-1]), _OPEN_ENDED
    if cleaned.isdigit():
        return int(cleaned), int(cleaned)
    low, sep, high = cleaned.partition("_")
    if sep and low.isdigit() and high.isdigit():
        return int(low), int(high)
    return None


@dataclass
class _Snapshot:
    """One practice's registered patients at one extract date, by sex."""

    total: dict[str, int] = field(default_factory=dict)  # sex -> the "ALL" ages row
    banded: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # sex -> sum of the age rows
    over_65: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    under_18: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def _sexes(self) -> list[str]:
        if self.banded.get("all"):
            return ["all"]
        return [s for s in self.banded if s != "all"]

    def list_size(self) -> int | None:
        if "all" in self.total:
            return self.total["all"]
        parts = [s for s in self.total if s != "all"]
        if parts:
            return sum(self.total[s] for s in parts)
        banded = sum(self.banded[s] for s in self._sexes())
        return banded or None

    def shares(self) -> tuple[float | None, float | None]:
        sexes = self._sexes()
        people = sum(self.banded[s] for s in sexes)
        if not people:
            return None, None
        return (sum(self.over_65[s] for s in sexes) / people, sum(self.under_18[s] for s in sexes) / people)


@dataclass
class AttributesRead:
    """Registered patients and attributes, read from any number of files."""

    rows_read: int = 0
    rows_rejected: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    snapshots: dict[str, dict[date, _Snapshot]] = field(default_factory=lambda: defaultdict(dict))
    imd_decile: dict[str, int] = field(default_factory=dict)
    rurality: dict[str, str] = field(default_factory=dict)

    def _reject(self, problem: RowProblem) -> None:
        self.rows_rejected += 1
        if len(self.problems) < PROBLEMS_LISTED:
            self.problems.append(problem)

    def read_registered(self, path: Path) -> None:
        """One of NHS Digital's "Patients Registered at a GP Practice" files."""
        for line, row in stream_rows(path):
            if isinstance(row, RowProblem):
                self._reject(row)
                continue
            self.rows_read += 1
            why = self._add_registered(row)
            if why:
                self._reject(RowProblem(str(path), line, why))

    def _add_registered(self, row: dict[str, str]) -> str | None:
        org_type = row.get("ORG_TYPE", row.get("TYPE", "GP")).strip().upper()
        if org_type != "GP":
            return None  # a PCN, sub-ICB or region row: readable, not a practice
        code = row.get("ORG_CODE", row.get("CODE", "")).strip().upper()
        if not code:
            return "ORG_CODE is empty"
        extract = parse_month(row.get("EXTRACT_DATE", "")) or date.min
        patients = parse_count(row["NUMBER_OF_PATIENTS"])
        if patients is None:
            return f"NUMBER_OF_PATIENTS {row['NUMBER_OF_PATIENTS']!r} is not a whole number"
        sex = value_key(row.get("SEX", "ALL")) or "all"
        age_text = row.get("AGE_GROUP_5", row.get("AGE", "ALL"))
        snapshot = self.snapshots[code].setdefault(extract, _Snapshot())
        if value_key(age_text) == "all":
            snapshot.total[sex] = snapshot.total.get(sex, 0) + patients
            return None
        ages = _age_range(age_text)
        if ages is None:
            return f"age {age_text!r} is not like 0_4, 37, 95+ or ALL"
        low, high = ages
        snapshot.banded[sex] += patients
        if low >= 65:
            snapshot.over_65[sex] += patients
        if high < 18:
            snapshot.under_18[sex] += patients
        elif low < 18:
            snapshot.under_18[sex] += patients * (18 - low) / (high - low + 1)
        return None

    def read_attributes(self, path: Path) -> None:
        """Mosaic's attributes CSV, or a Fingertips export of the practices' IMD 2019 score."""
        header = read_header(path)
        if "PRACTICE_CODE" in header:
            self._read_mosaic_attributes(path)
        else:
            self._read_fingertips(path)

    def _read_mosaic_attributes(self, path: Path) -> None:
        for line, row in stream_rows(path):
            if isinstance(row, RowProblem):
                self._reject(row)
                continue
            self.rows_read += 1
            code = row["PRACTICE_CODE"].strip().upper()
            decile_text = row.get("IMD_DECILE", "").strip()
            rural_text = value_key(row.get("RURALITY", ""))
            if not code:
                self._reject(RowProblem(str(path), line, "PRACTICE_CODE is empty"))
                continue
            if decile_text and not (decile_text.isdigit() and 1 <= int(decile_text) <= 10):
                self._reject(RowProblem(str(path), line, f"IMD_DECILE {decile_text!r} is not 1 to 10"))
                continue
            rurality = rural_text.split(" ")[0] if rural_text else ""
            if rurality and rurality not in ("urban", "rural"):
                self._reject(RowProblem(str(path), line, f"RURALITY {row['RURALITY']!r} is not urban or rural"))
                continue
            if decile_text:
                self.imd_decile[code] = int(decile_text)
            if rurality:
                self.rurality[code] = rurality

    def _read_fingertips(self, path: Path) -> None:
        scores: dict[str, tuple[str, float]] = {}  # code -> (time period, score), the latest period kept
        for line, row in stream_rows(path):
            if isinstance(row, RowProblem):
                self._reject(row)
                continue
            self.rows_read += 1
            indicator = row.get("INDICATOR_ID", FINGERTIPS_IMD_INDICATOR).strip()
            area_type = value_key(row.get("AREA_TYPE", "gps"))
            if indicator != FINGERTIPS_IMD_INDICATOR or not area_type.startswith("gp"):
                continue  # another indicator, or England / PCN rows: readable, not a practice's score
            code = row["AREA_CODE"].strip().upper()
            try:
                score = float(row["VALUE"])
            except ValueError:
                if row["VALUE"].strip():
                    self._reject(RowProblem(str(path), line, f"Value {row['VALUE']!r} is not a number"))
                continue  # an empty Value: Fingertips has no score for this practice
            period = row.get("TIME_PERIOD", "").strip()
            if code not in scores or period >= scores[code][0]:
                scores[code] = (period, score)
        ranked = sorted(scores, key=lambda c: (-scores[c][1], c))  # most deprived (highest score) first
        for rank, code in enumerate(ranked):
            self.imd_decile[code] = 1 + rank * 10 // len(ranked)

    def list_size_at(self, code: str, month: date) -> int | None:
        """The practice's list size from the snapshot nearest `month` (the earlier one on a tie)."""
        snapshots = self.snapshots.get(code)
        if not snapshots:
            return None
        def distance(extract: date) -> tuple[int, date]:
            return abs((extract.year - month.year) * 12 + extract.month - month.month), extract
        return snapshots[min(snapshots, key=distance)].list_size()

    def attributes(self) -> list[PracticeAttributes]:
        """Every practice with a list size, from its latest snapshot (attributes without a list size cannot be
        compared and are left out: `without_list_size` names them)."""
        out: list[PracticeAttributes] = []
        for code in sorted(self.snapshots):
            latest = self.snapshots[code][max(self.snapshots[code])]
            size = latest.list_size()
            if not size:
                continue
            over_65, under_18 = latest.shares()
            out.append(PracticeAttributes(code, size, self.imd_decile.get(code), over_65, under_18,
                                          self.rurality.get(code)))
        return out

    def without_list_size(self) -> list[str]:
        """Practices named in an attributes file with no registered-patients figure."""
        known = {a.practice_code for a in self.attributes()}
        return sorted((set(self.imd_decile) | set(self.rurality)) - known)
