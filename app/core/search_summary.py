"""A search's count line (the window's, and `mosaic search`'s on stderr), honest about who answered:
"8 patients from 3 of 5 practices; 2 can only be searched by NHS number; 1 could not be searched: Oakwood
Surgery".

A practice counts as having answered only when it was asked and replied. Practices whose system cannot take
this kind of search, practices outside the user's role, and practices that failed are each counted apart
(the failed ones named), so "from 5 of 5" never hides two practices that were never asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.core.search import PracticeResults


def plural(count: int, one: str, many: str | None = None) -> str:
    """'1 patient', '2 patients', '0 patients'."""
    return f"{count} {one if count == 1 else (many or one + 's')}"


@dataclass
class SearchTally:
    answered: list[str] = field(default_factory=list)  # practice names, in order of arrival
    unsupported: dict[str, list[str]] = field(default_factory=dict)  # "can only be searched by NHS number" -> names
    outside_role: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def add(self, result: PracticeResults, name: str) -> None:
        if result.error:
            self.failed.append(name)
        elif result.refused_by_policy:
            self.outside_role.append(name)
        elif result.unsupported:
            self.unsupported.setdefault(result.unsupported, []).append(name)
        else:
            self.answered.append(name)

    def summary(self, people: int, total: int) -> str:
        answered = len(self.answered)
        practices = "practice" if total == 1 else "practices"
        if people == 0 and answered:
            parts = [f"No patients found at {answered} of {total} {practices}"]
        else:
            parts = [f"{plural(people, 'patient')} from {answered} of {total} {practices}"]
        for phrase, names in self.unsupported.items():
            parts.append(f"{len(names)} {phrase}")
        if self.outside_role:
            parts.append(f"{plural(len(self.outside_role), 'practice')} outside your role, not searched")
        if self.failed:
            parts.append(f"{len(self.failed)} could not be searched: {', '.join(self.failed)}")
        return "; ".join(parts)
