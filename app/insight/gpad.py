"""NHS England's "Appointments in General Practice" (GPAD) practice-level files, read as published.

The format (every source is a stored public copy, read on 4 December 2026):

* NHS England, "Appointments in general practice: supporting information" —
  https://digital.nhs.uk/data-and-information/publications/statistical/appointments-in-general-practice/appointments-in-general-practice-supporting-information
  (what GPAD counts: appointments in practices' appointment books, with status, healthcare professional type,
  mode and time between booking and appointment; cancelled appointments are not in it; "no information is
  included on capacity").
* The monthly publication's zip "Practice_Level_Crosstab_<Mon>_<YY>.zip" (e.g.
  https://files.digital.nhs.uk/F4/911CA1/Practice_Level_Crosstab_May_25.zip, cited by a public analysis in R),
  one CSV per NHS region plus Mapping.csv. Its columns, as NHS England's own RAP training pipeline reads them
  (github nhsengland/code_your_own_pandas_pipeline, code_your_own_pandas_pipeline/processing.py and
  aggregations.py) and as a loader lists them for the London East/South file (github eamazon/datawarp-v2.1,
  output/london_east_south.md):
  APPOINTMENT_MONTH_START_DATE, GP_CODE, GP_NAME, SUPPLIER, PCN_CODE, PCN_NAME, SUB_ICB_LOCATION_CODE,
  SUB_ICB_LOCATION_NAME, HCP_TYPE, APPT_MODE, NATIONAL_CATEGORY, TIME_BETWEEN_BOOK_AND_APPT,
  COUNT_OF_APPOINTMENTS, APPT_STATUS.
  APPOINTMENT_MONTH_START_DATE is "01OCT2025" (strftime "%d%b%Y", as processing.py parses it).
* Vocabularies (NHS England's RAP pipeline renames "DNA", "Attended", "Unknown"; a public summary of May
  2025's National_Overview.csv lists the rest with counts):
  APPT_STATUS "Attended" | "DNA" | "Unknown";
  HCP_TYPE "GP" | "Other Practice staff" | "Unknown";
  APPT_MODE "Face-to-Face" | "Telephone" | "Video Conference/Online" | "Home Visit" | "Unknown"
  (the older sub-ICB "regional" CSVs say "Video/Online": both are read);
  TIME_BETWEEN_BOOK_AND_APPT "Same Day" | "1 Day" | "2 to 7 Days" | "8  to 14 Days" | "15  to 21 Days" |
  "22  to 28 Days" | "More than 28 Days" | "Unknown / Data Quality" — with the two spaces as published; values
  are compared without case or repeated spaces, so a file that lost them still reads.
* The sub-ICB "regional" CSVs (APPOINTMENT_MONTH "APR2024", no GP_CODE) are not practice level: a file
  without GP_CODE is refused, saying so.

What Mosaic derives for each practice and month, each with its numerator and denominator (the issue's
definitions, in GPAD's terms):

* appointments: every row's COUNT_OF_APPOINTMENTS (Attended + DNA + Unknown status; GPAD has no cancelled);
* dna_rate: DNA ÷ (Attended + DNA);
* same_day_share: "Same Day" ÷ appointments with a known booking band (not "Unknown / Data Quality");
* within_7_days: "Same Day" + "1 Day" + "2 to 7 Days" ÷ the same denominator; within_14_days adds "8 to 14";
* appointments_per_1000: appointments ÷ registered patients (list size from NHS Digital's "Patients Registered
  at a GP Practice", see practice_attributes.py), value = 1000 × numerator ÷ denominator; not given for a
  practice whose list size is not known (named in the report);
* the mix: metric "appointments" with `group` "mode:<m>", "clinician-type:<t>" or "category:<national
  category>" (modes in app/core/activity.py's words; HCP type "gp", "other-practice-staff", "unknown").

What GPAD cannot give (NOT_FROM_GPAD): slots_per_1000 and utilisation (GPAD has no slots: "no information is
included on capacity"), and median_days_to_appointment (GPAD has bands, 2–7 and 8–14 days wide, not days: a
median would be a guess inside a band, so Mosaic shows "not provided" rather than invent one).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from app.insight.csv_stream import RowProblem, UnreadableFile, read_header, stream_rows, value_key
from app.insight.national_model import NationalFigure, PracticeAttributes

#: GPAD's APPT_STATUS -> Mosaic's word
STATUSES: dict[str, str] = {"attended": "attended", "dna": "dna", "unknown": "unknown"}
#: GPAD's HCP_TYPE -> the group Mosaic stores ("Other Practice staff" is everyone who is not a GP: nurses,
#: pharmacists and the rest together, so it is not app.core.activity's "other")
HCP_TYPES: dict[str, str] = {"gp": "gp", "other practice staff": "other-practice-staff", "unknown": "unknown"}
#: GPAD's APPT_MODE -> app.core.activity.MODES (or "unknown")
MODES: dict[str, str] = {
    "face-to-face": "face-to-face", "telephone": "telephone", "video conference/online": "video",
    "video/online": "video", "home visit": "home-visit", "unknown": "unknown",
}
#: GPAD's TIME_BETWEEN_BOOK_AND_APPT, as published (two spaces and all), in order
BANDS: tuple[str, ...] = ("Same Day", "1 Day", "2 to 7 Days", "8  to 14 Days", "15  to 21 Days",
                          "22  to 28 Days", "More than 28 Days", "Unknown / Data Quality")
_BAND_INDEX: dict[str, int] = {value_key(b): i for i, b in enumerate(BANDS)}
_BAND_INDEX[value_key("Unknown / Data Issue")] = len(BANDS) - 1  # as one public analysis spells it
_UNKNOWN_BAND = len(BANDS) - 1

#: the measures GPAD cannot give, and why (shown as "not provided", never zero)
NOT_FROM_GPAD: dict[str, str] = {
    "slots_per_1000": "GPAD counts appointments, not slots: it has no capacity",
    "utilisation": "GPAD counts appointments, not slots: it has no capacity",
    "median_days_to_appointment": "GPAD gives booking bands (2 to 7 days, 8 to 14 days, ...), not days",
}

#: the columns a practice-level file must have (APPOINTMENT_MONTH is accepted for the month)
REQUIRED = ("GP_CODE", "APPT_STATUS", "HCP_TYPE", "APPT_MODE", "TIME_BETWEEN_BOOK_AND_APPT",
            "COUNT_OF_APPOINTMENTS")
MONTH_COLUMNS = ("APPOINTMENT_MONTH_START_DATE", "APPOINTMENT_MONTH")
_MONTH_FORMATS = ("%d%b%Y", "%b%Y", "%Y-%m-%d", "%Y-%m", "%d/%m/%Y", "%d-%b-%Y", "%d-%b-%y", "%b-%y")

#: how many problems a report lists one by one (all are counted)
PROBLEMS_LISTED = 50


@lru_cache(maxsize=1024)  # every row of a month's file carries the same text
def parse_month(text: str) -> date | None:
    """'01OCT2025', 'OCT2025', '2025-10-01', '2025-10', '01/10/2025' -> date(2025, 10, 1); None if none fits."""
    cleaned = text.strip()
    for fmt in _MONTH_FORMATS:
        try:
            parsed = datetime.strptime(cleaned, fmt)
        except ValueError:
            continue
        return date(parsed.year, parsed.month, 1)
    return None


def parse_count(text: str) -> int | None:
    """'1234' or '1,234' -> 1234; None for anything that is not a whole number of appointments ≥ 0."""
    cleaned = text.strip().replace(",", "")
    if not cleaned.isdigit():
        return None
    return int(cleaned)


@dataclass
class _PracticeMonth:
    """What one practice's rows for one month add up to: a fixed set of counters, whatever the file's size."""

    status: Counter[str] = field(default_factory=Counter)
    band: list[int] = field(default_factory=lambda: [0] * len(BANDS))
    mode: Counter[str] = field(default_factory=Counter)
    hcp: Counter[str] = field(default_factory=Counter)
    category: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.status.values())


@dataclass
class GpadRead:
    """What the practice-level files held, before any list size is applied."""

    months: dict[tuple[str, date], _PracticeMonth] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    rows_read: int = 0
    rows_rejected: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    def reject(self, problem: RowProblem) -> None:
        self.rows_rejected += 1
        if len(self.problems) < PROBLEMS_LISTED:
            self.problems.append(problem)


def _month_column(header: list[str], path: Path) -> str:
    missing = [c for c in REQUIRED if c not in header]
    if "COUNT_OF_APPOINTMENTS" in header and "GP_CODE" not in header:
        raise UnreadableFile(f"{path}: a sub-ICB (regional or daily) GPAD file, not the practice-level one "
                             "(it has no GP_CODE): use the Practice_Level_Crosstab files")
    month = next((c for c in MONTH_COLUMNS if c in header), None)
    if month is None:
        missing.append("APPOINTMENT_MONTH_START_DATE")
    if missing:
        raise UnreadableFile(f"{path}: not a GPAD practice-level file: no {', '.join(missing)} column")
    assert month is not None
    return month


def read_gpad_counts(paths: Iterable[Path], into: GpadRead | None = None) -> GpadRead:
    """Stream the practice-level files into per-practice, per-month counters (memory grows with practices ×
    months, never with rows). A row that cannot be read is counted and named (file, line, why), never
    dropped silently; a file that is not a practice-level GPAD file raises UnreadableFile naming it."""
    read = into or GpadRead()
    for path in paths:
        path = Path(path)
        month_column = _month_column(read_header(path), path)
        for line, row in stream_rows(path):
            if isinstance(row, RowProblem):
                read.reject(row)
                continue
            read.rows_read += 1
            problem = _add_row(read, row, month_column)
            if problem:
                read.reject(RowProblem(str(path), line, problem))
    return read


def _add_row(read: GpadRead, row: Mapping[str, str], month_column: str) -> str | None:
    """Add one row to its practice-month, or say why it cannot be."""
    code = row["GP_CODE"].strip().upper()
    if not code:
        return "GP_CODE is empty"
    month = parse_month(row[month_column])
    if month is None:
        return f"{month_column} {row[month_column]!r} is not a month (like 01OCT2025)"
    status = STATUSES.get(value_key(row["APPT_STATUS"]))
    if status is None:
        return f"APPT_STATUS {row['APPT_STATUS']!r} is not Attended, DNA or Unknown"
    hcp = HCP_TYPES.get(value_key(row["HCP_TYPE"]))
    if hcp is None:
        return f"HCP_TYPE {row['HCP_TYPE']!r} is not GP, Other Practice staff or Unknown"
    mode = MODES.get(value_key(row["APPT_MODE"]))
    if mode is None:
        return (f"APPT_MODE {row['APPT_MODE']!r} is not Face-to-Face, Telephone, Video Conference/Online, "
                "Home Visit or Unknown")
    band = _BAND_INDEX.get(value_key(row["TIME_BETWEEN_BOOK_AND_APPT"]))
    if band is None:
        return f"TIME_BETWEEN_BOOK_AND_APPT {row['TIME_BETWEEN_BOOK_AND_APPT']!r} is not one of GPAD's bands"
    count = parse_count(row["COUNT_OF_APPOINTMENTS"])
    if count is None:
        return f"COUNT_OF_APPOINTMENTS {row['COUNT_OF_APPOINTMENTS']!r} is not a whole number"
    cell = read.months.get((code, month))
    if cell is None:
        cell = read.months[(code, month)] = _PracticeMonth()
    cell.status[status] += count
    cell.band[band] += count
    cell.mode[mode] += count
    cell.hcp[hcp] += count
    category = row.get("NATIONAL_CATEGORY", "").strip()
    if category:
        cell.category[category] += count
    name = row.get("GP_NAME", "").strip()
    if name and code not in read.names:
        read.names[code] = name
    return None


#: a practice's list size: one number per practice, or the snapshot nearest a month
ListSizes = Mapping[str, int] | Callable[[str, date], int | None]


def _size_lookup(list_sizes: ListSizes | None) -> Callable[[str, date], int | None]:
    if list_sizes is None:
        return lambda code, month: None
    if callable(list_sizes):
        return list_sizes
    sizes = list_sizes
    return lambda code, month: sizes.get(code)


def derive_figures(read: GpadRead, list_sizes: ListSizes | None = None) -> list[NationalFigure]:
    """The measures GPAD can give, per practice and month, each with numerator and denominator."""
    size_of = _size_lookup(list_sizes)
    figures: list[NationalFigure] = []
    for (code, month), cell in sorted(read.months.items()):
        name = read.names.get(code, code)

        def figure(metric: str, numerator: float, denominator: float | None, group: str | None = None,
                   code: str = code, name: str = name, month: date = month) -> NationalFigure:
            return NationalFigure(code, name, month, metric, numerator, denominator, group)

        total = cell.total
        figures.append(figure("appointments", total, None))
        attended_or_dna = cell.status["attended"] + cell.status["dna"]
        if attended_or_dna:
            figures.append(figure("dna_rate", cell.status["dna"], attended_or_dna))
        known_band = total - cell.band[_UNKNOWN_BAND]
        if known_band:
            figures.append(figure("same_day_share", cell.band[0], known_band))
            figures.append(figure("within_7_days", sum(cell.band[0:3]), known_band))
            figures.append(figure("within_14_days", sum(cell.band[0:4]), known_band))
        size = size_of(code, month)
        if size:
            figures.append(figure("appointments_per_1000", total, size))
        for cut, counts in (("mode", cell.mode), ("clinician-type", cell.hcp), ("category", cell.category)):
            for value, count in sorted(counts.items()):
                figures.append(figure("appointments", count, None, f"{cut}:{value}"))
    return figures


def figure_value(fig: NationalFigure) -> float | None:
    """A national figure's value: the count, numerator ÷ denominator for a share, × 1000 per 1,000 patients."""
    if fig.denominator is None:
        return fig.numerator
    if not fig.denominator:
        return None
    scale = 1000.0 if fig.metric == "appointments_per_1000" else 1.0
    return scale * fig.numerator / fig.denominator


def read_gpad(paths: Iterable[Path | str]) -> list[NationalFigure]:
    """Read practice-level GPAD files — and NHS Digital's registered-patients files among them, for
    appointments per 1,000 — into NationalFigures. Unreadable rows are counted and named in
    `read_national`'s report; a file that is none of these raises UnreadableFile naming it."""
    return read_national(paths)[0]


class NationalStore(Protocol):
    """What import_gpad needs of app.insight.store.InsightStore."""

    def replace_national(self, figures: Iterable[NationalFigure]) -> int: ...


@dataclass
class ImportReport:
    """What an import read, what it stored, and everything it could not use, by name."""

    files: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_rejected: int = 0
    problems: list[RowProblem] = field(default_factory=list)  # the first PROBLEMS_LISTED, all counted
    practices: int = 0
    months: list[date] = field(default_factory=list)
    figures_stored: int = 0
    attributes: list[PracticeAttributes] = field(default_factory=list)
    attributes_stored: int | None = None  # None: the store keeps no attributes
    without_list_size: list[str] = field(default_factory=list)  # practice codes: no appointments_per_1000
    attributes_without_list_size: list[str] = field(default_factory=list)  # attributes that cannot be compared
    not_provided: dict[str, str] = field(default_factory=lambda: dict(NOT_FROM_GPAD))

    def lines(self) -> list[str]:
        """The report in plain words, for the CLI."""
        period = (f"{self.months[0]:%b %Y} to {self.months[-1]:%b %Y}" if self.months else "no months")
        out = [f"Read {len(self.files)} file(s): {self.rows_read:,} rows, {self.practices} practices, {period}.",
               f"Stored {self.figures_stored:,} national figures."]
        if self.rows_rejected:
            out.append(f"{self.rows_rejected:,} row(s) could not be read and were not used:")
            out.extend(f"  {p}" for p in self.problems)
            if self.rows_rejected > len(self.problems):
                out.append(f"  ... and {self.rows_rejected - len(self.problems):,} more")
        if self.without_list_size:
            shown = ", ".join(self.without_list_size[:20])
            more = f" and {len(self.without_list_size) - 20} more" if len(self.without_list_size) > 20 else ""
            out.append(f"No list size for {len(self.without_list_size)} practice(s), so no appointments per "
                       f"1,000 for them: {shown}{more}.")
        if self.attributes:
            stored = ("" if self.attributes_stored is None else f", {self.attributes_stored} stored")
            out.append(f"Practice attributes for {len(self.attributes)} practice(s){stored}.")
        if self.attributes_without_list_size:
            out.append(f"Attributes but no registered patients for {len(self.attributes_without_list_size)} "
                       "practice(s), so they cannot be compared: " + ", ".join(self.attributes_without_list_size[:20]))
        for metric, why in self.not_provided.items():
            out.append(f"Not provided by GPAD: {metric} ({why}).")
        return out


def read_national(paths: Iterable[Path | str]) -> tuple[list[NationalFigure], ImportReport]:
    """Read every file given — GPAD practice-level files, and optionally NHS Digital's registered-patients
    files and a practice attributes file (Mosaic's, or a Fingertips export), each told apart by its header."""
    from app.insight.practice_attributes import AttributesRead, is_attributes_file, is_registered_file

    files = [Path(p) for p in paths]
    gpad_files: list[Path] = []
    extra = AttributesRead()
    for path in files:
        header = read_header(path)
        if "COUNT_OF_APPOINTMENTS" in header:
            gpad_files.append(path)  # a sub-ICB file among them is refused by name in read_gpad_counts
        elif is_registered_file(header):
            extra.read_registered(path)
        elif is_attributes_file(header):
            extra.read_attributes(path)
        else:
            raise UnreadableFile(f"{path}: neither a GPAD practice-level file, a registered-patients file nor a "
                                 "practice attributes file (its columns are " + ", ".join(header[:8]) + ")")
    read = read_gpad_counts(gpad_files)
    figures = derive_figures(read, extra.list_size_at)
    report = ImportReport(files=[str(p) for p in files], rows_read=read.rows_read + extra.rows_read,
                          rows_rejected=read.rows_rejected + extra.rows_rejected,
                          problems=(read.problems + extra.problems)[:PROBLEMS_LISTED],
                          practices=len({code for code, _ in read.months}),
                          months=sorted({month for _, month in read.months}),
                          attributes=extra.attributes())
    report.without_list_size = sorted({code for code, month in read.months
                                       if not extra.list_size_at(code, month)})
    report.attributes_without_list_size = extra.without_list_size()
    return figures, report


def import_gpad(store: NationalStore, paths: Iterable[Path | str]) -> ImportReport:
    """`mosaic insight import-gpad FILE…`: read the files (see read_national) and replace the store's national
    figures, and its practice attributes where the store keeps them (`replace_attributes`)."""
    figures, report = read_national(paths)
    report.figures_stored = store.replace_national(figures)
    replace_attributes = getattr(store, "replace_attributes", None)
    if report.attributes and callable(replace_attributes):
        report.attributes_stored = replace_attributes(report.attributes)
    return report


def group_counts(figures: Iterable[NationalFigure]) -> dict[tuple[str, date, str, str | None], float]:
    """(practice, month, metric, group) -> numerator: for tests and for checking a file against its counts."""
    out: dict[tuple[str, date, str, str | None], float] = defaultdict(float)
    for fig in figures:
        out[(fig.practice_code, fig.month, fig.metric, fig.group)] += fig.numerator
    return dict(out)
