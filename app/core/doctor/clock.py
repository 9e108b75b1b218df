"""How far a server's clock is from this PC's, from the Date header of its reply (RFC 9110: one-second
resolution). Sign-in tokens (their iat, nbf and exp), SMART client assertions and the journal's times all assume
the clocks agree within a minute or two."""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime

#: beyond this a check warns (tokens are refused past a few minutes' skew, and journal times would mislead)
SKEW_WARN_S = 300.0


def skew_seconds(date_header: str | None, sent: float, received: float) -> float | None:
    """Server time minus this PC's time at the middle of the exchange (seconds since the epoch), or None when
    the reply had no usable Date header."""
    if not date_header:
        return None
    try:
        server = parsedate_to_datetime(date_header)
    except (TypeError, ValueError, IndexError):
        return None
    if server.tzinfo is None:
        return None
    return server.timestamp() - (sent + received) / 2


def describe(skew: float) -> str:
    """'3 s ahead of this PC's', '7 min behind this PC's'; within 2 s (the header's resolution) 'in step'."""
    size = abs(skew)
    if size < 2:
        return "in step with this PC's"
    amount = f"{size:.0f} s" if size < 120 else f"{size / 60:.0f} min" if size < 7200 else f"{size / 3600:.1f} h"
    return f"{amount} {'ahead of' if skew > 0 else 'behind'} this PC's"


def now() -> float:
    return datetime.now().timestamp()
