"""What `mosaic config schema DIR` writes, all generated from the one settings schema: JSON Schemas of the practice
directory and the access policy for IT's editors, and the Group Policy template (ADMX + en-US ADML).

The copies checked in under packaging/ are this output (`mosaic config schema packaging`); a test keeps them so.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from app.core.gpo_template import adml, admx
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


def write_all(folder: Path) -> list[Path]:
    """Write every generated file under `folder` (made if missing), replacing older copies; the paths written."""
    written = []
    for relative, text in generated_files().items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written
