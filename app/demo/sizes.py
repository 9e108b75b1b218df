"""How big a demo network may be, and which of its practices speak GP Connect.

Kept free of imports so that `mosaic`'s argument parser can name the range without loading the demo.
"""

from __future__ import annotations

#: `mosaic demo` and `mosaic demo-server --practices N` accept N from MIN_PRACTICES to MAX_PRACTICES
MIN_PRACTICES, MAX_PRACTICES = 1, 50

#: within every run of five practices, the second and the fourth speak GP Connect (as the five-practice
#: demo always has: Oakwood and Castlegate); the fifth is the client-credentials practice that the demo
#: moves to SMART Backend Services, so GP Connect never takes it
_GP_CONNECT_IN_FIVE = (1, 3)


def gp_connect_indexes(practices: int) -> tuple[int, ...]:
    """The indexes of the demo practices that speak GP Connect instead of FHIR R4, for `practices`
    practices: two in every five, spread out (1, 3, 6, 8, 11, 13, ...). One practice alone is FHIR R4;
    of two, the second is GP Connect. Practice 0 is always FHIR R4, since only FHIR R4 practices can be
    searched by name. A practice keeps its kind as the network grows."""
    if not MIN_PRACTICES <= practices <= MAX_PRACTICES:
        raise ValueError(f"a demo network has {MIN_PRACTICES} to {MAX_PRACTICES} practices, not {practices}")
    return tuple(i for i in range(practices) if i % 5 in _GP_CONNECT_IN_FIVE)
