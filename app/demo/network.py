"""A network of demo practices, each a real FHIR server on loopback, started and stopped together.

    with DemoNetwork.start(practices=5, patients=2000) as network:
        network.write_config(home / "practices.toml")   # and practices.toml.env with the secrets
        ...
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from app.core import paths
from app.core.config import NotifySettings
from app.core.model import Practice
from app.demo.fhir_server import DEMO_CONSUMER_ASID, DEMO_CONSUMER_ODS, DemoServer
from app.demo.nhs_numbers import NhsNumberAllocator
from app.demo.notify_server import DemoNotify, start_demo_notify
from app.demo.oidc_provider import DemoOidcProvider
from app.demo.population import Population
from app.demo.practices import make_secret, practice_specs
from app.demo.sharing import SharedPatient, share_patients
from app.demo.synthea_loader import LoadReport, load_synthea

DEFAULT_SEED = 1948  # the year the NHS began
FIRST_ASID = 918999198993  # demo Spine ASIDs: this one for practice 0, +1 for each next practice
#: Mosaic's own Spine identity in the demo ([gp_connect] in the written config): Ssp-From and the
#: JWT's requesting organisation


def demo_asid(index: int) -> str:
    """The 12-digit Spine ASID of the GP Connect endpoint of demo practice `index`."""
    return str(FIRST_ASID + index)


def secret_env_name(practice_id: str) -> str:
    """MOSAIC_SECRET_<ID>: the id upper-cased, anything not a letter or digit as '_'."""
    return "MOSAIC_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", practice_id).upper()


class DemoNetwork:
    """Running demo practices. Build one with `DemoNetwork.start(...)`; `stop()` when done."""

    def __init__(self, servers: list[DemoServer], shared_patients: list[SharedPatient], seed: int,
                 synthea: LoadReport | None = None) -> None:
        self.servers = servers
        self.shared_patients = shared_patients
        self.seed = seed
        self.synthea = synthea
        self._stopped = False
        #: the demo OpenID provider, when started with identity=True
        self.identity: DemoOidcProvider | None = None
        #: the demo GOV.UK Notify endpoint, when started with notify=True
        self.notify: DemoNotify | None = None
        #: practice id -> (private key PEM, Practice with auth = "private-key-jwt"), with smart_backend=True
        self.smart_keys: dict[str, tuple[str, Practice]] = {}

    @classmethod
    def start(cls, practices: int = 5, patients: int = 2000, latency_ms: float = 0,
              load_dir: Path | str | None = None, seed: int = DEFAULT_SEED,
              reference_date: date | None = None, *, identity: bool = False,
              smart_backend: bool = False, gp_connect: Sequence[int] = (), notify: bool = False) -> DemoNetwork:
        """Generate `practices` practices of `patients` patients each (plus Synthea patients from
        `load_dir`, dealt round-robin) and start a server for each. `identity` also starts a demo OpenID
        provider; `smart_backend` moves the client-credentials practices to SMART Backend Services
        (private_key_jwt, RS384).

        The practices at the indexes in `gp_connect` speak GP Connect Access Record: Structured (STU3)
        instead of FHIR R4, as EMIS and SystmOne practices do (`mosaic demo` passes
        `app.demo.sizes.gp_connect_indexes(practices)`: (1, 3) of five). `notify` also
        starts a local endpoint speaking GOV.UK Notify's API, with an SMS and an email template."""
        if patients < 0:
            raise ValueError("patients must not be negative")
        gpc = set(gp_connect)
        if any(not 0 <= i < practices for i in gpc):
            raise ValueError(f"gp_connect indexes must be between 0 and {practices - 1}")
        specs = [replace(s, auth="none") if s.index in gpc else s for s in practice_specs(practices, seed)]
        allocator = NhsNumberAllocator(seed)
        today = reference_date or date.today()
        populations = [Population.generate(spec, patients, seed, allocator, today) for spec in specs]
        shared = share_patients(populations, seed)
        synthea = load_synthea(load_dir, populations) if load_dir is not None else None
        for population in populations:
            population.build_indexes()  # now, rather than during the first search
        servers: list[DemoServer] = []
        try:
            for spec, population in zip(specs, populations, strict=True):
                server = DemoServer(spec, population, make_secret(seed, spec.id), seed=seed,
                                    asid=demo_asid(spec.index) if spec.index in gpc else None)
                servers.append(server)
                server.faults.latency_ms = latency_ms
                server.start()
        except BaseException:
            for server in servers:
                server.stop()
            raise
        _prepare_gp_connect_demo(servers, shared)
        network = cls(servers, shared, seed, synthea)
        if smart_backend:
            for server in servers:
                if server.spec.auth == "client-credentials":
                    network.enable_smart_backend(server.spec.id)
        if identity:
            network.identity = DemoOidcProvider.start()
        if notify:
            network.notify = start_demo_notify()
        return network

    def enable_smart_backend(self, practice_id: str, alg: str = "RS384") -> Practice:
        """Register a fresh key pair for this client-credentials practice's token endpoint, and from now
        on describe the practice as `auth = "private-key-jwt"` (its client secret keeps working too)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        from app.demo.auth import ClientCredentialsAuthenticator

        server = self.server(practice_id)
        if not isinstance(server.auth, ClientCredentialsAuthenticator):
            raise ValueError(f"{practice_id} has no token endpoint (auth is {server.spec.auth})")
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if alg == "RS384" \
            else ec.generate_private_key(ec.SECP384R1())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
        kid = f"{practice_id}-{alg.lower()}"
        client_id = server.spec.client_id or f"mosaic-{practice_id}"
        server.auth.register_public_key(client_id, key.public_key(), kid, alg, server.token_url)
        practice = replace(server.practice, auth="private-key-jwt", client_id=client_id, token_url=server.token_url,
                           key_id=kid, key_alg=alg)
        self.smart_keys[practice_id] = (pem, practice)
        return practice

    # -- what clients need --------------------------------------------------------------------

    @property
    def practices(self) -> list[Practice]:
        return [self.smart_keys[s.spec.id][1] if s.spec.id in self.smart_keys else s.practice
                for s in self.servers]

    @property
    def secrets(self) -> dict[str, str]:
        """Practice id -> password, bearer token, client secret or (SMART backend) private key PEM."""
        return {s.spec.id: self.smart_keys[s.spec.id][0] if s.spec.id in self.smart_keys else s.secret
                for s in self.servers}

    def summary(self) -> str:
        """What was made, in one line: e.g. "7 practices on 127.0.0.1 — 4 FHIR R4 (1 on SMART Backend
        Services), 3 GP Connect; 2,000 patients each"."""
        count = len(self.servers)
        gp_connect = sum(1 for s in self.servers if s.gpconnect is not None)
        smart = len(self.smart_keys)
        hosts = sorted({urlsplit(s.url).hostname or "" for s in self.servers})
        fhir = f"{count - gp_connect} FHIR R4" + (f" ({smart} on SMART Backend Services)" if smart else "")
        sizes = sorted({len(s.population) for s in self.servers})
        patients = f"{sizes[0]:,}" if len(sizes) == 1 else f"{sizes[0]:,}–{sizes[-1]:,}"
        noun = "patient" if sizes == [1] else "patients"
        practices = "practice" if count == 1 else "practices"
        return (f"{count} {practices} on {', '.join(hosts)} — {fhir}, {gp_connect} GP Connect; "
                f"{patients} {noun}" + (" each" if count > 1 else ""))

    def notify_settings(self) -> NotifySettings:
        """[notify] for this network: tell patients of cross-practice opens, through the demo endpoint."""
        assert self.notify is not None, "start the network with notify=True"
        return NotifySettings(rule="cross-practice", sms_template_id=self.notify.sms_template,
                              email_template_id=self.notify.email_template, base_url=self.notify.base_url,
                              ods_code=DEMO_CONSUMER_ODS, organisation="Mosaic demo hub")

    def server(self, practice_id: str) -> DemoServer:
        for server in self.servers:
            if server.spec.id == practice_id:
                return server
        known = ", ".join(s.spec.id for s in self.servers)
        raise KeyError(f"no demo practice '{practice_id}' (running: {known})")

    def write_config(self, path: Path | str) -> Path:
        """Write a practice directory (TOML) for this network, and its secrets beside it in
        `<path>.env` (mode 0600) as MOSAIC_SECRET_<ID>=... lines. Returns the TOML path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        blocks = []
        for p in self.practices:
            keys: list[tuple[str, str]] = [("id", p.id), ("name", p.name), ("ods_code", p.ods_code),
                                           ("adapter", p.adapter), ("base_url", p.base_url), ("auth", p.auth)]
            if p.auth == "basic" and p.username:
                keys.append(("username", p.username))
            if p.auth == "client-credentials":
                keys += [("token_url", p.token_url or ""), ("client_id", p.client_id or "")]
            if p.asid:
                keys.append(("asid", p.asid))
            if p.auth == "private-key-jwt":  # the key in a file only this user can read, named here
                key_path = path.with_name(f"{path.name}.{p.id}.key.pem")
                _write_private(key_path, self.smart_keys[p.id][0])
                keys += [("token_url", p.token_url or ""), ("client_id", p.client_id or ""),
                         ("key_id", p.key_id or ""), ("key_alg", p.key_alg or "RS384"), ("key_file", str(key_path))]
            keys.append(("colour", p.colour))
            lines = "\n".join(f"{key} = {_toml_string(value)}" for key, value in keys)
            blocks.append(f"[[practice]]\n{lines}\n")
        # A --config file stands in for the per-user file, so it holds only what a per-user file may: the
        # practices, and Mosaic's own Spine identity ([gp_connect], taken while the machine file has none).
        # The demo's sign-in and notify settings are machine-only: they go to `<path>.machine.toml`, which
        # Mosaic never reads from there (IT, or a test, installs it as the machine-wide file).
        header = "# Mosaic demo practices: fictional patients on this computer only.\n\n"
        if any(p.asid for p in self.practices):
            header += (f"[gp_connect]\nasid = {_toml_string(DEMO_CONSUMER_ASID)}\n"
                       f"ods_code = {_toml_string(DEMO_CONSUMER_ODS)}\n\n")
        _write_private(path, header + "\n".join(blocks))  # names the servers secrets go to: nobody else's file
        _write_private(path.with_name(path.name + ".machine.toml"), self.machine_settings())
        env_path = path.with_name(path.name + ".env")
        with paths.create_secret_file(env_path, replace_own=True) as handle:
            for practice_id, secret in self.secrets.items():
                if practice_id in self.smart_keys:
                    continue  # a PEM is not one line: it is in its key file
                if self.server(practice_id).gpconnect is not None:
                    continue  # GP Connect practices take the consumer's JWT, not a secret
                handle.write(f"{secret_env_name(practice_id)}={secret}\n")
            if self.notify is not None:
                handle.write(f"MOSAIC_SECRET_NOTIFY={self.notify.api_key}\n")
            # A script that reads FILE.env journals in the demo's own folder, with the demo's own key.
            for name, value in self.demo_files.items():
                handle.write(f"{name}={value}\n")
        return path

    @functools.cached_property
    def demo_files(self) -> dict[str, str]:
        """This network's own per-user folder and journal key for the CLI (see app/demo/session.py)."""
        from app.demo.session import demo_files

        return demo_files()

    def machine_settings(self) -> str:
        """The demo's machine-only tables ([identity], [notify]) as TOML, for a machine-wide practices.toml."""
        text = "# Mosaic demo: machine-wide settings (install as the machine-wide practices.toml to use them).\n\n"
        if self.identity is not None:
            settings = self.identity.settings
            text += (f"[identity]\nissuer = {_toml_string(settings.issuer or '')}\n"
                     f"client_id = {_toml_string(settings.client_id or '')}\n"
                     f"scopes = {_toml_string(' '.join(settings.scopes))}\n\n")
        if self.notify is not None:
            notify = self.notify_settings()
            text += (f"[notify]\nrule = {_toml_string(notify.rule)}\n"
                     f"sms_template_id = {_toml_string(notify.sms_template_id or '')}\n"
                     f"email_template_id = {_toml_string(notify.email_template_id or '')}\n"
                     f"base_url = {_toml_string(notify.base_url)}\n"
                     f"ods_code = {_toml_string(notify.ods_code or '')}\n"
                     f"organisation = {_toml_string(notify.organisation or '')}\n\n")
        return text

    # -- control ------------------------------------------------------------------------------

    def set_latency(self, ms: float) -> None:
        for server in self.servers:
            server.faults.latency_ms = ms

    def reset_faults(self) -> None:
        for server in self.servers:
            server.faults.reset()

    def stop(self) -> None:
        """Stop every server; prompt even with requests hanging, and safe to call again."""
        if self._stopped:
            return
        self._stopped = True
        for server in self.servers:
            server.stop()
        if self.identity is not None:
            self.identity.stop()
        if self.notify is not None:
            self.notify.stop()

    def __enter__(self) -> DemoNetwork:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


def _prepare_gp_connect_demo(servers: list[DemoServer], shared: list[SharedPatient]) -> None:
    """Patients shared between a GP Connect practice and another are never dissenting (the demo opens
    them side by side), and the first such patient at each GP Connect practice carries a List warning."""
    by_id = {s.spec.id: s for s in servers}
    warned: set[str] = set()
    for item in shared:
        for practice_id, _ in (item.first, item.second):
            api = by_id[practice_id].gpconnect
            if api is None:
                continue
            api.dissenting.discard(item.nhs_number)
            if practice_id not in warned:
                warned.add(practice_id)
                api.warnings.setdefault(item.nhs_number, ("confidential-items",))


def _write_private(path: Path, text: str) -> None:
    """A config or key file: created exclusively, 0600, never another account's file or a link (see paths)."""
    with paths.create_secret_file(path, replace_own=True) as handle:
        handle.write(text)


def _toml_string(value: str) -> str:
    """A TOML basic string (JSON string escapes are valid TOML escapes)."""
    return json.dumps(value, ensure_ascii=False)
