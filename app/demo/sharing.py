"""Patients registered at two practices at once (temporary residents, people between homes):
the same NHS number, name and birth date under each practice's own local id."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from app.demo.population import Population


@dataclass(frozen=True)
class SharedPatient:
    nhs_number: str
    first: tuple[str, str]  # (practice id, local id)
    second: tuple[str, str]


def share_patients(populations: Sequence[Population], seed: int = 0, share: float = 0.01,
                   per_pair: int = 3) -> list[SharedPatient]:
    """Register some patients of each practice at every other one too: about `share` of each list,
    at least `per_pair` per pair of practices when the lists are long enough."""
    count = len(populations)
    if count < 2:
        return []
    smallest = min(len(p) for p in populations)
    wanted = max(per_pair, math.ceil(smallest * share / (count - 1)))
    # each practice gives and receives `k` per partner; keep at least half its list unshared
    k = min(wanted, smallest // (4 * (count - 1)))
    if k == 0:
        return []
    rng = random.Random(f"shared:{seed}")
    free = []
    for pop in populations:
        positions = list(range(len(pop)))
        rng.shuffle(positions)
        free.append(positions)
    shared: list[SharedPatient] = []
    for a in range(count):
        for b in range(a + 1, count):
            for _ in range(k):
                position = free[a].pop()
                while populations[a].at(position).deceased is not False and free[a]:
                    position = free[a].pop()  # the living: a deceased patient registers nowhere new
                source = populations[a].mark_shared_source(position)
                copy = populations[b].adopt_identity(free[b].pop(), source)
                assert source.nhs_number is not None
                shared.append(SharedPatient(source.nhs_number, (populations[a].practice_id, source.local_id),
                                            (populations[b].practice_id, copy.local_id)))
    return shared
