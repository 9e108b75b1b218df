"""The Group Policy template for Mosaic (ADMX, and its en-US ADML strings), generated from the settings schema.

Two machine policies under HKLM\\SOFTWARE\\Policies\\Mosaic (app/core/group_policy.py reads them):
MachineFolder (where practices.toml and the access policy it names are) and IdleLockMinutes (the idle lock;
its explanation and default come from [identity] idle_lock_minutes in app/core/settings_schema.py).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from app.core import group_policy
from app.core.settings_schema import IdentityTable

NAMESPACE = "http://schemas.microsoft.com/GroupPolicy/2006/07/PolicyDefinitions"
TARGET_NAMESPACE = "Mosaic.Policies.Mosaic"
CATEGORY = "Mosaic"
SUPPORTED = "SUPPORTED_Mosaic"
REVISION = "1.0"


@dataclass(frozen=True)
class _Policy:
    name: str
    title: str
    explain: str
    element: str  # "text" | "decimal"
    label: str
    attributes: tuple[tuple[str, str], ...] = ()


def _policies() -> list[_Policy]:
    idle = IdentityTable.model_fields["idle_lock_minutes"]
    default_minutes = int(idle.default)
    return [
        _Policy(
            group_policy.MACHINE_FOLDER_VALUE, "Folder of Mosaic's machine-wide files",
            "The folder that holds practices.toml, the practice directory IT deploys for every user of this "
            "computer (and the access policy it names), instead of %PROGRAMDATA%\\Mosaic. An absolute local "
            "folder such as D:\\Mosaic, writable by administrators only; a relative path, a share or a path with "
            "environment variables stops Mosaic with a configuration error. Not configured: "
            "%PROGRAMDATA%\\Mosaic. Only this machine policy can move the folder: no user setting, environment "
            "variable or argument can.",
            "text", "Machine files folder:"),
        _Policy(
            group_policy.IDLE_LOCK_VALUE, "Idle lock (minutes)",
            f"{(idle.description or '').split('. ')[0]}. This policy beats [identity] idle_lock_minutes in the "
            f"machine-wide practices.toml; a user's own file may only make it shorter. Not configured: the machine "
            f"file's value, else {default_minutes} minutes.",
            "decimal", "Minutes without input before the window locks:",
            (("minValue", str(group_policy.IDLE_LOCK_MIN_MINUTES)),
             ("maxValue", str(group_policy.IDLE_LOCK_MAX_MINUTES)))),
    ]


def _tag(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, _tag(tag), attributes)
    if text is not None:
        element.text = text
    return element


def _text(root: ET.Element) -> str:
    ET.register_namespace("", NAMESPACE)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def admx() -> str:
    root = ET.Element(_tag("policyDefinitions"), {"revision": REVISION, "schemaVersion": "1.0"})
    namespaces = _sub(root, "policyNamespaces")
    _sub(namespaces, "target", prefix="mosaic", namespace=TARGET_NAMESPACE)
    _sub(root, "resources", minRequiredRevision=REVISION)
    definitions = _sub(_sub(root, "supportedOn"), "definitions")
    _sub(definitions, "definition", name=SUPPORTED, displayName=f"$(string.{SUPPORTED})")
    _sub(_sub(root, "categories"), "category", name=CATEGORY, displayName=f"$(string.{CATEGORY})")
    policies = _sub(root, "policies")
    for p in _policies():
        policy = _sub(policies, "policy", name=p.name, **{"class": "Machine"}, displayName=f"$(string.{p.name})",
                      explainText=f"$(string.{p.name}_Explain)", presentation=f"$(presentation.{p.name})",
                      key=group_policy.POLICY_KEY)
        _sub(policy, "parentCategory", ref=CATEGORY)
        _sub(policy, "supportedOn", ref=SUPPORTED)
        elements = _sub(policy, "elements")
        _sub(elements, p.element, id=p.name, valueName=p.name, required="true", **dict(p.attributes))
    return _text(root)


def adml() -> str:
    root = ET.Element(_tag("policyDefinitionResources"), {"revision": REVISION, "schemaVersion": "1.0"})
    _sub(root, "displayName", "Mosaic")
    _sub(root, "description", "Machine-wide settings for Mosaic, one window onto every GP practice in a network.")
    resources = _sub(root, "resources")
    strings = _sub(resources, "stringTable")
    _sub(strings, "string", "Mosaic", id=CATEGORY)
    _sub(strings, "string", "Mosaic 0.1 and later", id=SUPPORTED)
    presentations = _sub(resources, "presentationTable")
    for p in _policies():
        _sub(strings, "string", p.title, id=p.name)
        _sub(strings, "string", p.explain, id=f"{p.name}_Explain")
        presentation = _sub(presentations, "presentation", id=p.name)
        if p.element == "text":
            box = _sub(presentation, "textBox", refId=p.name)
            _sub(box, "label", p.label)
        else:
            default = str(int(IdentityTable.model_fields["idle_lock_minutes"].default))
            _sub(presentation, "decimalTextBox", p.label, refId=p.name, defaultValue=default)
    return _text(root)
