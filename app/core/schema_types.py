"""Value types of Mosaic's settings schema (pydantic v2) whose failures keep the words Mosaic's configuration
errors have always used, so that a message still names the file, the practice (or table) and the key.

A check fails with `fault(...)`: a pydantic error of type "mosaic" whose context carries the message and,
where the failing key is not the field being checked (a rule across fields), that key or key path. The
loaders (app/core/config.py, app/core/policy.py) turn the first error into their own exception.
"""

from __future__ import annotations

import ipaddress
import math
import unicodedata
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, ValidationError
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

MOSAIC_ERROR = "mosaic"


def fault(message: str, *, key: str | None = None, path: tuple[str, ...] | None = None,
          quote_key: bool = False) -> PydanticCustomError:
    """A validation failure saying `message`. `key`/`path`: where it is, when not the field being validated;
    `quote_key`: the reader puts the key's name first ("'reasons' must be a list of strings")."""
    context: dict[str, Any] = {"message": message}
    if key is not None:
        context["key"] = key
    if path is not None:
        context["path"] = list(path)
    if quote_key:
        context["quote_key"] = True
    return PydanticCustomError(MOSAIC_ERROR, "{message}", context)


def first_error(exc: ValidationError) -> dict[str, Any]:
    """The error to report: an unknown key first, then a missing one, then the first in the schema's order
    (the order Mosaic's checks have always run in)."""
    errors: list[dict[str, Any]] = [dict(e) for e in exc.errors()]
    rank = {"extra_forbidden": 0, "missing": 1}
    return min(errors, key=lambda e: rank.get(e["type"], 2))


def error_message(error: dict[str, Any]) -> str:
    """A failure's words: ours as written, pydantic's own for anything else."""
    ctx = error.get("ctx") or {}
    return str(ctx["message"]) if error["type"] == MOSAIC_ERROR else str(error["msg"])


def error_key_path(error: dict[str, Any]) -> tuple[str, ...]:
    """Where the failure is, as table and key names (list positions dropped)."""
    ctx = error.get("ctx") or {}
    if "path" in ctx:
        return tuple(ctx["path"])
    loc = tuple(str(part) for part in error["loc"] if not isinstance(part, int))
    if "key" in ctx:
        return (*loc, str(ctx["key"]))
    return loc


# --- checks ------------------------------------------------------------------------------------------------

#: bidirectional overrides and isolates: they reorder what IT reads on screen
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def control_character_problem(value: str) -> str | None:
    """Control characters (C0, DEL, C1: terminal escapes, CSI, new lines) and bidi overrides in a setting would
    reach IT's terminal through `mosaic config show` and `mosaic doctor`; none is ever needed in one."""
    for char in value:
        if unicodedata.category(char) == "Cc" or char in _BIDI_CONTROLS:
            return (f"must not contain control characters (found U+{ord(char):04X}; terminal escapes, new lines "
                    "and tabs are refused)")
    return None


def printable(text: str) -> str:
    """`text` with every control character and bidi override written as \\uXXXX: an error message quotes what a
    file says (an unknown key, an id), and what a file says must not drive IT's terminal."""
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) == "Cc" or c in _BIDI_CONTROLS else c
                   for c in text)


def _non_empty_string(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise fault("must be a non-empty string", quote_key=True)
    problem = control_character_problem(value)
    if problem:
        raise fault(problem)
    return value


def string_check(check: Callable[[str], str | None]) -> Callable[[Any], str]:
    """A non-empty string that `check` finds no problem with (it returns the problem's words)."""

    def validate(value: Any) -> str:
        value = _non_empty_string(value)
        problem = check(value)
        if problem:
            raise fault(problem)
        return value

    return validate


def one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    return string_check(lambda v: None if v in choices else f"must be one of {', '.join(choices)}")


def positive_number(message: str) -> Callable[[Any], float]:
    def validate(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise fault(message)
        return value

    return validate


def number_between(low: float, high: float, unit: str) -> Callable[[Any], float]:
    """A finite number from `low` to `high` (inf, nan and 1e308 would hang a check or overflow a size)."""
    message = f"must be a number from {low:g} to {high:g} {unit}".rstrip()

    def validate(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or not low <= value <= high:
            raise fault(message)
        return value

    return validate


def true_or_false(value: Any) -> bool:
    if not isinstance(value, bool):
        raise fault("must be true or false", quote_key=True)
    return value


def string_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise fault("must be a list of strings", quote_key=True)
    return value


USERINFO_REFUSED = ("must not contain a user name or password (user:password@): the machine-wide file is "
                    "readable by every user; a practice's secret goes in the keyring or MOSAIC_SECRET_<ID>")
QUERY_REFUSED = ("must not contain a query string or fragment (?...#...): a token there would be readable by every "
                 "user and printed by mosaic doctor")


def url_problem(url: str) -> str | None:
    """Patient data never crosses a network in clear text: plain http is allowed only to this machine. A URL
    carries no credentials: no userinfo, no query string (the files are readable by every user)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        return "must be an http(s) URL, e.g. \"https://fhir.example.nhs.uk/R4\""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL, e.g. \"https://fhir.example.nhs.uk/R4\""
    if "@" in parts.netloc:
        return USERINFO_REFUSED
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return QUERY_REFUSED
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return "plain http is only allowed to this machine (127.0.0.1/localhost); use https"
    return None


def redacted_url(url: str) -> str:
    """`url` as Mosaic prints it (mosaic doctor, mosaic config show, error messages): a password in its userinfo
    as ***, its query string and fragment dropped (shown as ?...), the user name kept. The one redactor: a URL a
    setting gives is never printed any other way."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(a URL that cannot be read)"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}{':***' if has_password else ''}@{host}"
    hidden = "?..." if parts.query or parts.fragment or "?" in url or "#" in url else ""
    return f"{parts.scheme}://{netloc}{parts.path}{hidden}" if parts.scheme else f"{netloc}{parts.path}{hidden}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- types -------------------------------------------------------------------------------------------------

NonEmptyStr = Annotated[str, Field(min_length=1, json_schema_extra={"pattern": r"\S"}),
                        BeforeValidator(_non_empty_string)]
WebUrl = Annotated[str, Field(json_schema_extra={"format": "uri"}), BeforeValidator(string_check(url_problem))]
TrueOrFalse = Annotated[bool, BeforeValidator(true_or_false)]
StringList = Annotated[list[NonEmptyStr], BeforeValidator(string_list)]


class EditorSchema(GenerateJsonSchema):
    """JSON Schema as TOML is written: a key that may be left out is optional, never `null` (TOML has none)."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        json_schema = super().default_schema(schema)
        if json_schema.get("default", ...) is None:
            del json_schema["default"]
        return json_schema
