"""Reasons for access given in this session, so the same patient at a second practice is not asked again.

A reason given for opening a patient's record covers that patient (by NHS number) at every practice for
the rest of the session, when the user's role allows it (`reason_covers_patient`, true unless the policy
says otherwise). It never covers break-glass or an access flagged as self-or-family: those are asked for
every time. Every access it covers is journaled with the reason, as if typed again. What is remembered is
per login: it lasts through the idle lock (the same person carries on) and is forgotten at sign-out and
when another user takes over.
"""

from __future__ import annotations


class SessionReasons:
    def __init__(self) -> None:
        self._given: dict[tuple[str, str], str] = {}  # (login, NHS number) -> the reason last given

    def remember(self, login: str, nhs_number: str, reason: str) -> None:
        self._given[(login, nhs_number)] = reason

    def recall(self, login: str, nhs_number: str) -> str | None:
        return self._given.get((login, nhs_number))

    def forget(self) -> None:
        """Sign-out, or another user: nothing given before covers anything after."""
        self._given.clear()

    def __len__(self) -> int:
        return len(self._given)
