"""What `mosaic config schema DIR` writes, all generated from the one settings schema: JSON Schemas of the practice
directory and the access policy for IT's editors, and the Group Policy template (ADMX + en-US ADML).

The copies checked in under packaging/ are this output (`mosaic config schema packaging`); a test keeps them so.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path, PurePosixPath

from pydantic import BaseModel

from app.core.gpo_template import adml, admx
from app.core.paths import replace_file
from app.core.policy_schema import PolicyFile
from app.core.schema_types import EditorSchema
from app.core.settings_schema import PracticeDirectory

PRACTICES_SCHEMA = "schema/practices.schema.json"
POLICY_SCHEMA = "schema/policy.schema.json"
ADMX = "gpo/mosaic.admx"
ADML = "gpo/en-US/mosaic.adml"


def json_schema(model: type[BaseModel]) -> str:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              **model.model_json_schema(schema_generator=EditorSchema)}
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def generated_files() -> dict[str, str]:
    """Each file's path (relative to the output folder) and text."""
    return {PRACTICES_SCHEMA: json_schema(PracticeDirectory), POLICY_SCHEMA: json_schema(PolicyFile),
            ADMX: admx(), ADML: adml()}


class SchemaExportError(Exception):
    """A file could not be written safely: a subfolder is a link, or not a folder."""


def write_all(folder: Path) -> list[Path]:
    """Write every generated file under `folder` (made if missing), replacing older copies; the paths written.

    Never opens an existing path for writing: each file is written whole to a new file in its folder (created
    exclusively by mkstemp) and renamed over the old name, so a link planted at DIR/gpo/mosaic.admx is itself
    replaced and its target left alone. A subfolder (schema, gpo, gpo/en-US) that is a link (or, on Windows, a
    junction) or not a folder is refused before anything is written under it. DIR itself is the caller's
    choice and may be a link."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for relative, text in generated_files().items():
        *folders, name = PurePosixPath(relative).parts
        parent = folder
        for part in folders:
            parent = _own_subfolder(parent / part)
        path = parent / name
        _replace(path, text.encode("utf-8"))
        written.append(path)
    return written


_REPARSE_POINT = 0x400  # FILE_ATTRIBUTE_REPARSE_POINT: a Windows junction or link


def _is_link(info: os.stat_result) -> bool:
    return stat.S_ISLNK(info.st_mode) or bool(getattr(info, "st_file_attributes", 0) & _REPARSE_POINT)


def _own_subfolder(path: Path) -> Path:
    """`path` as a real folder (made if missing), never through a link."""
    with contextlib.suppress(FileExistsError):
        path.mkdir()
    info = os.lstat(path)
    if _is_link(info):
        raise SchemaExportError(f"{path} is a link; nothing was written under it (remove it, or choose another "
                                "folder)")
    if not stat.S_ISDIR(info.st_mode):
        raise SchemaExportError(f"{path} is not a folder; nothing was written under it")
    return path


def _replace(path: Path, data: bytes) -> None:
    """`data` as a new file renamed over `path` (readable by all: these are templates, no secrets)."""
    replace_file(path, data, private=False)
