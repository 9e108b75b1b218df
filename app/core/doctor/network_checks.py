"""Checks of what Mosaic reaches over the network: each practice (TLS verified, credentials proved by the
adapter's own health check, clock compared), the central audit store and the identity provider. Read-only:
the practices' metadata and a credential check as `mosaic check` makes, the store's privilege tables, the
provider's discovery document and keys."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from app.core.doctor import clock
from app.core.doctor.bounded import in_thread
from app.core.doctor.result import CheckResult, Status
from app.core.model import Practice, ServerInfo
from app.core.schema_types import redacted_url

#: the bound on the central store and identity checks, seconds (a practice has its own: its timeout setting)
SERVICE_TIMEOUT_S = 15.0

_PRACTICE_ACTIONS = {
    "auth": "Check the practice's secret (mosaic credentials set {id}, or MOSAIC_SECRET_{ENV} for unattended runs) "
            "and that the practice still has Mosaic's account.",
    "network": "Check that this PC reaches {where} (network, firewall, DNS); if other PCs can, the practice's "
               "server may be down.",
    "timeout": "Check the network path to {where}, or ask the practice whether its server is overloaded.",
    "config": "Correct practice '{id}' in {source}.",
    "bad-reply": "Check base_url for practice '{id}' in {source} with the practice: another server answered.",
}
_CERTIFICATE_ACTION = ("Mosaic always verifies TLS. Give this PC the CA certificate that signed the practice's "
                       "server certificate (the system's trust store), or ask the practice to fix its certificate.")


def practice_bound(practice: Practice, cap_s: float | None = None) -> float:
    """How long a practice's check may take: the adapter's own deadline for a request, plus a second."""
    from adapters.http import DEADLINE_FACTOR

    bound = practice.timeout_s * DEADLINE_FACTOR + 1
    return min(bound, cap_s) if cap_s else bound


async def practice(practice: Practice, cap_s: float | None = None) -> CheckResult:
    """The adapter's health check (metadata, and the credentials proved) and, beside it, one plain GET of the
    metadata through the adapters' own client (TLS verified) for the server's Date header."""
    name, title = f"practice:{practice.id}", f"Practice {practice.name} ({practice.id})"
    bound = practice_bound(practice, cap_s)
    try:
        async with asyncio.timeout(bound):
            connected, skew = await asyncio.gather(_connect(practice, bound), _clock(practice),
                                                   return_exceptions=True)  # a failed clock read fails nothing
    except TimeoutError:
        return CheckResult.fail(name, title, f"{practice.name} did not answer within {bound:g} s "
                                f"({redacted_url(practice.base_url)}).", _action("timeout", practice))
    if isinstance(connected, BaseException):
        return _failed(name, title, practice, connected)
    info = connected
    tls = "TLS certificate verified" if urlsplit(practice.base_url).scheme == "https" else \
        "plain http to this machine"
    software = f", {info.software}" if info.software else ""
    detail = (f"online: {info.round_trip_ms:.0f} ms, FHIR {info.fhir_version or '?'}{software}; {tls}; "
              f"credentials {info.extra.get('auth_check', 'accepted')}")
    if isinstance(skew, float):
        detail += f"; its clock is {clock.describe(skew)}"
        if abs(skew) > clock.SKEW_WARN_S:
            return CheckResult.warn(name, title, detail + ".", "Set this PC's clock right (NTP: timedatectl set-ntp "
                                    "true, or Windows Time), or tell the practice theirs is wrong: sign-in tokens and "
                                    "the journal's times depend on it.")
    elif skew is None:
        detail += "; its clock could not be compared (no Date header)"
    else:
        detail += "; its clock could not be compared (a plain request for its metadata failed)"
    return CheckResult.ok(name, title, detail + ".")


async def _connect(practice: Practice, bound: float) -> ServerInfo:
    from adapters.base import adapter_for
    from app.core.secrets import resolve_secret
    from app.core.sessions import needs_secret

    secret = await in_thread(lambda: resolve_secret(practice.id, practice.name), bound) \
        if needs_secret(practice) else None
    adapter = adapter_for(practice, secret)
    try:
        return await adapter.connect()
    finally:
        await adapter.close()


async def _clock(practice: Practice) -> float | None:
    from adapters.http import make_client

    async with make_client(practice) as client:
        sent = clock.now()
        response = await client.get(f"{practice.base_url}/metadata")
        received = clock.now()
        await response.aread()
    return clock.skew_seconds(response.headers.get("date"), sent, received)


def _failed(name: str, title: str, practice: Practice, exc: BaseException) -> CheckResult:
    from adapters.base import AdapterError
    from app.core.secrets import SecretError

    if isinstance(exc, SecretError):
        return CheckResult.fail(name, title, str(exc), _action("auth", practice))
    if isinstance(exc, TimeoutError):
        return CheckResult.fail(name, title, f"{practice.name} did not answer in time.", _action("timeout", practice))
    if not isinstance(exc, AdapterError):
        return CheckResult.fail(name, title, f"{practice.name}: unexpected failure ({type(exc).__name__}).",
                                "See Mosaic's log; tell IT support.")
    if "certificate" in exc.message:
        return CheckResult.fail(name, title, exc.message, _CERTIFICATE_ACTION)
    return CheckResult.fail(name, title, exc.message, _action(exc.kind, practice))


def _action(kind: str, practice: Practice) -> str:
    from app.core.secrets import env_name

    parts = urlsplit(practice.base_url)
    where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    template = _PRACTICE_ACTIONS.get(kind, "Tell the practice; Mosaic's log has the details.")
    return template.format(id=practice.id, ENV=env_name(practice.id).removeprefix("MOSAIC_SECRET_"), where=where,
                           source=practice.source or "the practice directory")


def central_store(url: str | None, schema: str | None = None) -> CheckResult:
    """Blocking: run in a thread (`run.py`). Connects with the workstation's login and asks, without adding
    anything, whether it may add entries. `schema`: tests use one of their own."""
    from app.core.audit.central import CentralStoreError, open_central
    from app.core.secrets import SecretError

    name, title = "central-audit", "Central audit store"
    if not url:
        return CheckResult.ok(name, title, "Not configured ([audit] central_url): journal entries stay on this PC "
                              "(and go to the practices that take them).")
    what_to_do = ("Check that the server is up and that this PC reaches it on its port (firewall), the login in "
                  "[audit] central_url, and its password: mosaic credentials set central (or MOSAIC_SECRET_CENTRAL).")
    try:
        store = open_central(url, schema=schema)
    except (CentralStoreError, SecretError) as exc:
        return CheckResult.fail(name, title, str(exc), "Correct [audit] central_url in the machine-wide file, or "
                                "store the password: mosaic credentials set central.")
    except ModuleNotFoundError as exc:
        return CheckResult.fail(name, title, f"The database driver is not installed ({exc.name}).",
                                "Install Mosaic with its central extra: pip install 'mosaic-gp[central]'.")
    try:
        problems = store.insert_problems()
    except CentralStoreError as exc:
        return CheckResult.fail(name, title, str(exc), what_to_do)
    finally:
        store.close()
    if problems:
        return CheckResult.fail(name, title, f"{store.where} answers, but " + "; ".join(problems) + ".",
                                "Set the store up with packaging/central-audit-postgres.sql and give this PC's login "
                                "the workstation role (GRANT mosaic_workstation TO <login>).")
    return CheckResult.ok(name, title, f"{store.where}: reachable; this login may add entries and checkpoints "
                          "(nothing was added).")


async def identity(issuer: str | None, cap_s: float | None = None) -> CheckResult:
    """The provider's discovery document and signing keys, over TLS verified, and its clock."""
    from app.core import net, oidc

    name, title = "identity", "Identity provider"
    if not issuer:
        return CheckResult.ok(name, title, "Not configured ([identity]): users are this computer's accounts.")
    bound = min(SERVICE_TIMEOUT_S, cap_s) if cap_s else SERVICE_TIMEOUT_S
    dates: list[tuple[str | None, float]] = []

    async def remember_date(response) -> None:
        dates.append((response.headers.get("date"), clock.now()))

    started = clock.now()
    try:
        async with asyncio.timeout(bound), net.async_client(timeout=bound, follow_redirects=False,
                                                            event_hooks={"response": [remember_date]}) as client:
            meta = await oidc.discover(client, issuer)
            keys = await oidc.fetch_jwks(client, meta)
    except TimeoutError:
        return CheckResult.fail(name, title, f"{issuer} did not answer within {bound:g} s.",
                                f"Check that this PC reaches {urlsplit(issuer).hostname} (network, firewall).")
    except oidc.OidcError as exc:
        return CheckResult.fail(name, title, f"{issuer}: {exc}", f"Check that this PC reaches "
                                f"{urlsplit(issuer).hostname} (network, firewall) and [identity] issuer in the "
                                "machine-wide file.")
    detail = f"{issuer}: discovery document and {len(keys.keys)} signing key(s) read over " + \
        ("TLS verified" if urlsplit(issuer).scheme == "https" else "plain http to this machine")
    skew = clock.skew_seconds(dates[0][0], started, dates[0][1]) if dates else None
    if skew is None:
        return CheckResult.ok(name, title, detail + "; its clock could not be compared (no Date header).")
    detail += f"; its clock is {clock.describe(skew)}"
    if abs(skew) > clock.SKEW_WARN_S:
        return CheckResult(name, title, Status.WARN, detail + ".", "Set this PC's clock right (NTP): sign-in "
                           "tokens are refused when the clocks disagree by minutes.")
    return CheckResult.ok(name, title, detail + ".")
