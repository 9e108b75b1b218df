"""The demo's access policy: what `mosaic demo` runs under when the machine has no policy of its own.

The demo user (Dr Asha Patel, login `clinician1`, a GP at Riverside Surgery) gets the role chosen with
`mosaic demo --role`: `hub` (an extended-access hub clinician: every practice, a reason for every
access), `gp` (every practice, no reason asked), `researcher` (a study's pseudonymised view) or `locality` (a
locality lead: the Locality view's figures, no patient records); hub and gp have locality insight too. In every
role one patient per practice is restricted (break-glass), and the demo user's own record and a family
member's are at two of the practices (self/family rule). `DemoPolicy.describe()` names them, so that
whoever runs the demo can find them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from app.core.nhs_number import format_nhs_number
from app.core.policy import Policy, parse_policy
from app.demo.oidc_provider import DEMO_USER

DEMO_ROLES = ("hub", "gp", "researcher", "locality")
DEMO_STUDY = "demo-study"
HUB_REASONS = ("Extended-access appointment", "Direct care", "Medicines reconciliation", "Safeguarding")


@dataclass(frozen=True)
class Marked:
    """A demo patient the policy singles out."""

    why: str
    practice_name: str
    name: str
    nhs_number: str


@dataclass(frozen=True)
class DemoPolicy:
    policy: Policy
    role: str
    marked: tuple[Marked, ...]
    study_key: str  # the research study's pseudonym key (MOSAIC_SECRET_STUDY_DEMO_STUDY)

    def describe(self) -> str:
        lines = [f"Demo access policy: you are {DEMO_USER['name']} ({DEMO_USER['preferred_username']}), "
                 f"role '{self.role}'."]
        lines += [f"  {m.why}: {m.name}, NHS No. {format_nhs_number(m.nhs_number)}, {m.practice_name}"
                  for m in self.marked]
        return "\n".join(lines)


def demo_policy(network, role: str = "hub") -> DemoPolicy:  # network: app.demo.network.DemoNetwork
    if role not in DEMO_ROLES:
        raise ValueError(f"role must be one of {', '.join(DEMO_ROLES)}")
    servers = network.servers
    marked: list[Marked] = []
    restricted: dict[str, str] = {}
    for server in servers:
        p = _nth_with_nhs(server, 5)
        restricted[server.spec.id] = p.nhs_number
        marked.append(Marked("Restricted (break-glass)", server.spec.name, f"{p.family.upper()}, {' '.join(p.given)}",
                             p.nhs_number))
    me = _nth_with_nhs(servers[0], 11)
    relative_at, relative = _relative(servers)
    marked.append(Marked("Your own record (self)", servers[0].spec.name, f"{me.family.upper()}, {' '.join(me.given)}",
                         me.nhs_number))
    marked.append(Marked("Same surname and postcode as you (family)", relative_at.spec.name,
                         f"{relative.family.upper()}, {' '.join(relative.given)}", relative.nhs_number))
    consented = [_nth_with_nhs(server, 3).nhs_number for server in servers]
    text = _policy_text(role, restricted, me.nhs_number, relative.family, relative.postcode, consented)
    key = hashlib.sha256(f"mosaic-demo-study-{network.seed}".encode()).hexdigest()
    return DemoPolicy(parse_policy(text, "<demo policy>"), role, tuple(marked), key)


def _nth_with_nhs(server, n: int):
    """The n-th generated (not Synthea) patient with an NHS number: deterministic for a seed."""
    candidates = [p for p in server.population if p.nhs_number and p.resource is None]
    return candidates[min(n, len(candidates) - 1)]


def _relative(servers):
    """A patient sharing the demo user's surname (else any), whose postcode becomes the user's own."""
    family = str(DEMO_USER["family_name"]).casefold()
    for server in servers[1:] + servers[:1]:
        for p in server.population:
            if p.nhs_number and p.postcode and p.family.casefold() == family:
                return server, p
    server = servers[min(2, len(servers) - 1)]
    return server, _nth_with_nhs(server, 13)


def _quoted(values) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def _policy_text(role: str, restricted: dict[str, str], own_nhs: str, family: str, postcode: str,
                 consented: list[str]) -> str:
    login = DEMO_USER["preferred_username"]
    lines = [
        "[roles.hub]", 'practices = ["*"]', "reason_required = true", f"reasons = {_quoted(HUB_REASONS)}",
        "insight = true", "",
        "[roles.gp]", 'practices = ["*"]', f"reasons = {_quoted(HUB_REASONS)}", "insight = true", "",
        "[roles.locality]", 'practices = ["*"]', "records = false", "insight = true", "",
        "[roles.researcher]", 'practices = ["*"]', "research = true", f'study = "{DEMO_STUDY}"',
        'sections = ["problems", "medications", "allergies", "observations", "immunisations"]', "",
        f"[studies.{DEMO_STUDY}]", f"consented = {_quoted(consented)}", "",
        f"[users.{login}]", f'role = "{role}"', f'nhs_number = "{own_nhs}"', f'family = "{family}"',
        f'postcode = "{postcode}"', "",
    ]
    for practice_id, number in restricted.items():
        lines += [f"[practices.{practice_id}]", f'restricted = ["{number}"]', ""]
    return "\n".join(lines)
