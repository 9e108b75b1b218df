"""Unique, valid test-range NHS numbers for a whole demo network."""

from __future__ import annotations

import random
import threading

from app.core.nhs_number import check_digit

_SPACE = 1_000_000  # six free digits after the 999 test prefix


class NhsNumberAllocator:
    """Hands out distinct NHS numbers 999 xxx xxxx that pass Modulus 11, in a seeded order.

    An affine map x -> (a*x + b) mod 10**6 with a coprime to 10**6 is a permutation, so successive
    counters never give the same number twice; prefixes that have no valid check digit are skipped.
    """

    def __init__(self, seed: int = 0) -> None:
        rng = random.Random(f"nhs:{seed}")
        a = rng.randrange(100_001, _SPACE, 2)
        while a % 5 == 0:
            a += 2
        self._a, self._b = a, rng.randrange(_SPACE)
        self._counter = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            while True:
                if self._counter >= _SPACE:
                    raise RuntimeError("the 999 test range has no NHS numbers left")
                nine = f"999{(self._a * self._counter + self._b) % _SPACE:06d}"
                self._counter += 1
                check = check_digit(nine)
                if check is not None:
                    return f"{nine}{check}"
