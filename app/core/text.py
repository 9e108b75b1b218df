"""Server text made safe to show: one rule for every string a practice (or any server) sends.

A practice's server is not trusted to send only printable text. Control characters in a name, a note or
an error's diagnostics would reach the terminal raw (ESC[2J clears the screen, ESC]0;…BEL sets the window
title, a C1 CSI starts a sequence with one character), and Unicode bidirectional overrides make a widget
or a log show text in another order than it is (U+202E makes "gnp.exe" read "exe.png"). `clean_text` removes them:

- C0 controls (U+0000-U+001F) except line feed and tab, so a note keeps its lines (a CR is removed: CR LF
  becomes LF, and a lone CR can no longer return to the start of a line and overwrite it);
- DEL (U+007F) and the C1 controls (U+0080-U+009F);
- the bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) and the invisible
  direction marks (U+200E, U+200F, U+061C), which can reorder the digits of a number shown beside them.

Where it applies, so that every surface is covered by construction rather than field by field: at the core's
one door to adapters (app/core/boundary.py `adapter_call`, and a practice's sign-in in app/core/sessions.py),
everything an adapter hands the core — search answers, records, what `connect` learnt — is walked by
`clean_model`, whichever adapter made it and however it decoded the reply; every AdapterError's message is
cleaned when it is made (adapters/base.py), the OperationOutcome diagnostics quoted in it included
(adapters/http.py); the sign-in service's, GOV.UK Notify's and the audit destinations' error texts too.
The walk costs about 3% of a record's fetch and mapping (scanning every reply's bytes before parsing cost
as much as parsing it). Characters are removed, not replaced: what is left reads as the server meant it.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import re
from typing import Any, TypeVar

T = TypeVar("T")

_UNSAFE_CHARS = ("\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 but tab and LF; DEL; C1
                 "\u061c\u200e\u200f"  # direction marks
                 "\u202a-\u202e\u2066-\u2069")  # embeddings, overrides, isolates
_UNSAFE = re.compile(f"[{_UNSAFE_CHARS}]")


def clean_text(text: str) -> str:
    """`text` without control characters (but line feed and tab) or bidirectional controls."""
    if text.isprintable():  # every unsafe character is unprintable (Cc or Cf): most text is done in C
        return text
    return _UNSAFE.sub("", text) if _UNSAFE.search(text) else text


def is_clean(text: str) -> bool:
    return text.isprintable() or _UNSAFE.search(text) is None


def clean_model(value: T) -> T:
    """What an adapter handed the core (a PatientRecord, a list of PatientSummary, …) with every string in
    it cleaned; objects with nothing to clean come back as they were (the same object)."""
    cleaned: T = _clean(value)
    return cleaned


_FIELDS: dict[type, tuple[str, ...] | None] = {}


def _init_fields(cls: type) -> tuple[str, ...] | None:
    """A dataclass's fields set by its constructor (None: not a dataclass), looked up once per class."""
    try:
        return _FIELDS[cls]
    except KeyError:
        names = tuple(f.name for f in dataclasses.fields(cls) if f.init) if dataclasses.is_dataclass(cls) else None
        _FIELDS[cls] = names
        return names


_ATOMS = frozenset({int, float, bool, type(None), datetime.date, datetime.datetime})  # nothing in them to clean


def _clean(value: Any) -> Any:
    kind = type(value)
    if kind is str:  # the commonest by far: first, without isinstance
        return clean_text(value)
    if kind in _ATOMS:
        return value
    if isinstance(value, str):
        if isinstance(value, enum.Enum):  # SectionName and the like: Mosaic's own
            return value
        return clean_text(str.__str__(value)) if not is_clean(value) else value
    if isinstance(value, int | float | bool) or value is None:
        return value
    names = _init_fields(kind)
    if names is not None:
        changes = {}
        for name in names:
            old = getattr(value, name)
            new = _clean(old)
            if new is not old:
                changes[name] = new
        return dataclasses.replace(value, **changes) if changes else value
    if isinstance(value, tuple):
        items = [_clean(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, list):  # a list subclass (adapters.base.Matches) keeps its type and attributes
        for i, item in enumerate(value):
            new = _clean(item)
            if new is not item:
                value[i] = new
        return value
    if isinstance(value, dict):
        if any(type(k) is str and not is_clean(k) for k in value):
            return {_clean(k): _clean(v) for k, v in value.items()}
        for key, item in value.items():
            new = _clean(item)
            if new is not item:
                value[key] = new
        return value
    return value
