"""`mosaic config show [--json]`: every setting in force and where it came from; `mosaic config schema DIR`: the JSON
Schemas and the Group Policy template, generated from the settings schema.

Neither signs anyone in nor reads a patient: IT can run both unattended. Secrets are never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(sub: Any) -> None:
    config = sub.add_parser("config", help="show the settings in force, or write the schema and Group Policy files")
    actions = config.add_subparsers(dest="action", required=True)
    show = actions.add_parser("show", help="every setting in force and where it came from (never a secret)")
    show.add_argument("--config", type=Path, default=argparse.SUPPRESS)
    show.add_argument("--json", action="store_true", help="one JSON object")
    schema = actions.add_parser("schema", help="write the JSON Schemas (schema/) and the Group Policy template "
                                "(gpo/mosaic.admx, gpo/en-US/mosaic.adml) under DIR")
    schema.add_argument("folder", type=Path, metavar="DIR")


def run(args: argparse.Namespace) -> int:
    if args.action == "schema":
        from app.core.schema_export import SchemaExportError, write_all

        try:
            written = write_all(args.folder)
        except SchemaExportError as exc:
            print(f"mosaic: {exc}", file=sys.stderr)
            return EXIT_FAILED
        for path in written:
            print(path)
        return EXIT_OK
    from app.core.config import ConfigError
    from app.core.effective_settings import effective_settings
    from app.core.policy import PolicyFileError

    try:
        settings = effective_settings(args.config)
    except ConfigError as exc:
        print(f"mosaic: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PolicyFileError as exc:
        print(f"mosaic: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(settings, indent=2))
    else:
        print(render(settings))
    return EXIT_OK


def render(settings: dict[str, Any]) -> str:
    lines: list[str] = []

    def section(title: str, rows: dict[str, dict[str, Any]]) -> None:
        lines.append(f"[{title}]")
        width = max((len(k) for k in rows), default=0)
        for key, row in rows.items():
            lines.append(f"  {key:<{width}}  {_value(row['value']):<40}  {_origin(row)}")
        lines.append("")

    section("folders", settings["folders"])
    for practice in settings["practices"]:
        section(f"practice {practice['id']}", practice["settings"])
    section("identity", {**settings["identity"], "idle_lock_minutes": settings["idle_lock_minutes"]})
    if "note" in settings["idle_lock_minutes"]:
        lines.insert(-1, f"  note: {settings['idle_lock_minutes']['note']}")
    for name in ("gp_connect", "audit", "notify", "insight"):
        section(name, settings[name])
    lines.extend(_policy_lines(settings["policy"]))
    lines.append("[secrets]  (never shown: where each would come from, and whether it is there)")
    for secret in settings["secrets"]:
        lines.append("  " + _secret_line(secret))
    return "\n".join(lines)


def _value(value: Any) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _origin(row: dict[str, Any]) -> str:
    where = f" {row['where']}" if row.get("where") else ""
    exists = "" if "exists" not in row else ("; exists" if row["exists"] else "; not there")
    return f"({row['source']}{where}{exists})"


def _policy_lines(policy: dict[str, Any] | None) -> list[str]:
    if policy is None:
        return ["[policy]", "  (none configured: everything is allowed and no reason is asked)", ""]
    lines = ["[policy]", f"  file  {policy['file']['value']}  {_origin(policy['file'])}"]
    for name, role in policy["roles"].items():
        flags = [f for f in ("reason_required", "research", "insight") if role[f]] + \
            ([] if role["records"] else ["no records"])
        study = f", study {role['study']}" if role["study"] else ""
        lines.append(f"  role {name}: practices {_value(role['practices'])}; sections {_value(role['sections'])}"
                     f"{'; ' + ', '.join(flags) if flags else ''}{study}")
    lines.append(f"  users: {policy['users']}")
    for study in policy["studies"]:
        lines.append(f"  study {study['id']}: {study['consented']} consented")
    for pid, count in policy["restricted"].items():
        told = " (told)" if pid in policy["notify_restricted"] else ""
        lines.append(f"  practice {pid}: {count} restricted{told}")
    lines.append("")
    return lines


def _secret_line(secret: dict[str, Any]) -> str:
    if "file" in secret:
        return f"{secret['for']}: file {secret['file']} ({'present' if secret['present'] else 'MISSING'})"
    parts = [f"{secret['environment']} {'set' if secret['environment_set'] else 'not set'}"]
    if "keyring_set" in secret:
        state = {True: "stored", False: "not stored",
                 None: secret.get("keyring_problem") or f"keyring unusable ({secret.get('keyring_error')})"}
        parts.append(f"keyring {secret['keyring']}: {state[secret['keyring_set']]}")
    elif "keyring" in secret:
        parts.append(f"keyring {secret['keyring']}")
    return f"{secret['for']}: " + "; ".join(parts)
