"""A network of demo practices, each a real FHIR server on loopback, started and stopped together.

    with DemoNetwork.start(practices=5, patients=2000) as network:
        network.write_config(home / "practices.toml")   # and practices.toml.env with the secrets
        ...
"""

from __future__ import annotations

import gc
import json
import os
import re
from datetime import date
from pathlib import Path
from types import TracebackType

from app.core.model import Practice
from app.demo.fhir_server import DemoServer
from app.demo.nhs_numbers import NhsNumberAllocator
from app.demo.population import Population
from app.demo.practices import make_secret, practice_specs
from app.demo.sharing import SharedPatient, share_patients
from app.demo.synthea_loader import LoadReport, load_synthea

DEFAULT_SEED = 1948  # the year the NHS began


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

    @classmethod
    def start(cls, practices: int = 5, patients: int = 2000, latency_ms: float = 0,
              load_dir: Path | str | None = None, seed: int = DEFAULT_SEED,
              reference_date: date | None = None) -> DemoNetwork:
        """Generate `practices` practices of `patients` patients each (plus Synthea patients from
        `load_dir`, dealt round-robin) and start a server for each."""
        if patients < 0:
            raise ValueError("patients must not be negative")
        specs = practice_specs(practices, seed)
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
                server = DemoServer(spec, population, make_secret(seed, spec.id), seed=seed)
                servers.append(server)
                server.faults.latency_ms = latency_ms
                server.start()
        except BaseException:
            for server in servers:
                server.stop()
            raise
        # The populations are long-lived: move them out of the collector's view, or each full
        # collection (~125 ms at 5 x 20,000) would pause `mosaic demo`'s window thread too.
        gc.collect()
        gc.freeze()
        return cls(servers, shared, seed, synthea)

    # -- what clients need --------------------------------------------------------------------

    @property
    def practices(self) -> list[Practice]:
        return [s.practice for s in self.servers]

    @property
    def secrets(self) -> dict[str, str]:
        """Practice id -> password, bearer token or client secret."""
        return {s.spec.id: s.secret for s in self.servers}

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
            keys.append(("colour", p.colour))
            lines = "\n".join(f"{key} = {_toml_string(value)}" for key, value in keys)
            blocks.append(f"[[practice]]\n{lines}\n")
        header = "# Mosaic demo practices: fictional patients on this computer only.\n\n"
        path.write_text(header + "\n".join(blocks), encoding="utf-8")
        env_path = path.with_name(path.name + ".env")
        fd = os.open(env_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for practice_id, secret in self.secrets.items():
                handle.write(f"{secret_env_name(practice_id)}={secret}\n")
        os.chmod(env_path, 0o600)
        return path

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

    def __enter__(self) -> DemoNetwork:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


def _toml_string(value: str) -> str:
    """A TOML basic string (JSON string escapes are valid TOML escapes)."""
    return json.dumps(value, ensure_ascii=False)
