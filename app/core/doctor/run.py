"""Every doctor check, run concurrently, each within its own time bound; the results in a fixed order."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from app.core.doctor import files, insight_store, local_checks, network_checks
from app.core.doctor.bounded import in_thread
from app.core.doctor.result import CheckResult, Status

log = logging.getLogger("mosaic.doctor")

#: the bound on a check of this PC's own files and libraries (a hung network home folder, a keyring over D-Bus)
LOCAL_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Report:
    checks: list[CheckResult]
    seconds: float

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status is Status.FAIL]

    def count(self, status: Status) -> int:
        return sum(1 for c in self.checks if c.status is status)


async def _bounded(name: str, title: str, bound: float, check: Callable[[], Awaitable[CheckResult]]) -> CheckResult:
    """`check()` timed, within `bound` seconds; a check that overran or broke fails, saying so."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(bound):
            result = await check()
    except TimeoutError:
        result = CheckResult.fail(name, title, f"The check did not finish within {bound:g} s.",
                                  "Run mosaic doctor again; if it recurs, see Mosaic's log and tell IT support.")
    except Exception as exc:  # a check's own bug must not hide the other checks
        log.exception("doctor check %s failed", name)
        result = CheckResult.fail(name, title, f"The check stopped on a failure Mosaic did not expect "
                                  f"({type(exc).__name__}).", "See Mosaic's log; tell IT support.")
    return result if result.seconds else result.timed(time.perf_counter() - started)


def _threaded(name: str, title: str, bound: float, call: Callable[[], CheckResult]) -> Awaitable[CheckResult]:
    """A blocking check in a thread of its own, within `bound` seconds."""
    def timed() -> CheckResult:  # its own time, not the wait for the loop to take the result
        started = time.perf_counter()
        return call().timed(time.perf_counter() - started)

    return _bounded(name, title, bound, lambda: in_thread(timed, bound + 1))


def _local(name: str, title: str, call: Callable[[], CheckResult]) -> Awaitable[CheckResult]:
    return _threaded(name, title, LOCAL_TIMEOUT_S, call)


def _load(config_file: Path | None) -> files.Settings:
    """The configuration, after the modules the checks use are imported: checks that import at once in their
    threads wait for each other on the import lock, and their times would count the wait."""
    import importlib

    for module in ("keyring", "app.core.audit.journal", "app.core.audit.central", "app.core.policy", "adapters.base",
                   "adapters.http", "app.core.oidc", "app.core.sessions"):
        importlib.import_module(module)
    from adapters.base import available_adapters

    available_adapters()  # the entry points, scanned once
    return files.load_settings(config_file)


async def run_checks(config_file: Path | None = None, *, timeout_s: float | None = None,
                     central_schema: str | None = None) -> Report:
    """Every check for this PC and configuration (`config_file`: --config, replacing the per-user file).
    `timeout_s` caps each network check's bound; `central_schema` is for tests (the store's schema)."""
    started = time.perf_counter()
    settings = await in_thread(lambda: _load(config_file), LOCAL_TIMEOUT_S)
    checks: list[Awaitable[CheckResult]] = [
        _local("qt-libraries", "Qt libraries", local_checks.qt_libraries),
        _local("keyring", "OS keyring", local_checks.keyring_backend),
        _local("machine-file", "Machine-wide settings", lambda: files.machine_file(settings)),
        _local("user-file", "Per-user settings", lambda: files.user_file(settings, config_file)),
        _local("policy", "Access policy", lambda: files.policy(config_file)),
        _local("journal-folder", "Journal folder", files.journal_folder),
        _local("journal-schema", "Journal schema", files.journal_schema),
    ]
    if settings.error is None:
        checks.extend(_network(settings, config_file, timeout_s, central_schema))
    results = list(await asyncio.gather(*checks))
    if settings.error is not None:
        results.append(CheckResult.fail("network", "Practices and services", "Not checked: the configuration could "
                                        "not be read (see above).", "Correct the file named above, then run mosaic "
                                        "doctor again."))
    return Report(results, time.perf_counter() - started)


def _network(settings: files.Settings, config_file: Path | None, timeout_s: float | None,
             central_schema: str | None) -> list[Awaitable[CheckResult]]:
    checks: list[Awaitable[CheckResult]] = []
    if not settings.practices:
        async def none_configured() -> CheckResult:
            return CheckResult.warn("practices", "Practices", "No practices are configured: Mosaic offers its demo "
                                    "instead.", "List the practices in the machine-wide practices.toml (README: "
                                    "Configuration).")

        checks.append(none_configured())
    for practice in settings.practices:
        bound = network_checks.practice_bound(practice, timeout_s) + 1  # the check's own bound comes first

        def check(p=practice) -> Awaitable[CheckResult]:
            return network_checks.practice(p, timeout_s)

        checks.append(_bounded(f"practice:{practice.id}", f"Practice {practice.name} ({practice.id})", bound, check))
    service_bound = min(network_checks.SERVICE_TIMEOUT_S, timeout_s) if timeout_s else network_checks.SERVICE_TIMEOUT_S
    central_url = settings.audit.central_url
    checks.append(_threaded("central-audit", "Central audit store", service_bound,
                            lambda: network_checks.central_store(central_url, central_schema)))
    checks.append(_threaded("insight-store", "Locality insight store", service_bound,
                            lambda: insight_store.check(config_file)))
    checks.append(_bounded("identity", "Identity provider", service_bound + 1,
                           lambda: network_checks.identity(settings.identity.issuer, timeout_s)))
    return checks
