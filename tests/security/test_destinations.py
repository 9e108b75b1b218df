"""Issue 10, class 6: destinations follow the id, not the commit.

Entries queued for practice `riverside` went to whatever server a later `--config` named `riverside`, and
entries queued for a practice no longer configured crashed every `mosaic show` (KeyError in flush_outbox).
Each outbox row now carries the server identity it was committed for; it is delivered only through a configured
practice at that server, and otherwise waits, reported by `mosaic audit status`, never redirected, never a crash.
Rows queued by an older Mosaic name no server: they are kept and reported, never sent (the fail-safe).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

from app.core.audit.balp import AUDIT_ENTRY_SYSTEM
from app.core.audit.journal import Journal, default_path
from app.core.audit.model import Action, AuditUser, JournalEntry
from app.core.model import Practice
from app.core.secrets import env_name
from app.core.server_identity import identity_of
from app.core.service import MosaicCore
from tests.machine import CLI, REPO

USER = AuditUser(login="jbloggs", display_name="Jo Bloggs", role="clinician")


def write_directory(path: Path, *practices: Practice) -> Path:
    """A --config practice directory (basic-auth FHIR practices, as the demo's riverside and oakwood are)."""
    blocks = []
    for p in practices:
        assert p.auth == "basic" and p.adapter == "fhir-r4", p
        blocks.append(f'[[practice]]\nid = "{p.id}"\nname = "{p.name}"\nods_code = "{p.ods_code}"\n'
                      f'adapter = "{p.adapter}"\nbase_url = "{p.base_url}"\nauth = "basic"\n'
                      f'username = "{p.username}"\n')
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


def mosaic(*args: str, secrets: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_SECRET_")}
    env.update({env_name(pid): secret for pid, secret in secrets.items()})
    return subprocess.run([*CLI, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)


def copies(server, entry_id: str) -> int:
    return len(server.audit.search(identifier=f"{AUDIT_ENTRY_SYSTEM}|urn:uuid:{entry_id}"))


def waiting_for(destination_part: str) -> int:
    with Journal.open(default_path(), read_only=True) as journal:
        return sum(d.waiting for d in journal.outbox_status() if destination_part in d.destination)


async def queue_reads_for(practice: Practice, server, local_ids: list[str]) -> list[str]:
    """Open records at `practice` while its AuditEvent endpoint fails: their entries wait in the outbox."""
    journal = Journal.open()
    core = MosaicCore([practice], journal=journal, user=USER)
    try:
        with server.faults.override(mode="http-503", match="/AuditEvent"):
            await core.sign_in()
            for local_id in local_ids:
                await core.open_record(practice.id, local_id)
            await core.close()
        return [e.entry_id for e in journal.query(practice_id=practice.id) if e.action == Action.READ]
    finally:
        journal.close()


async def test_entries_wait_for_their_own_server_and_never_go_to_a_namesake(network, tmp_path: Path) -> None:
    server_a, server_b = network.servers[0], network.servers[1]  # riverside, oakwood: two real loopback servers
    a = server_a.practice
    queued = await queue_reads_for(a, server_a, [server_a.population.at(n).local_id for n in range(3)])
    assert len(queued) == 3 and waiting_for(f"practice:{a.id}") == 3

    # a later --config names `riverside` at server B (B's own credentials, so it signs in there)
    impostor = replace(server_b.practice, id=a.id, name=a.name)
    at_b = write_directory(tmp_path / "riverside-at-b.toml", impostor)
    secrets_b = {a.id: network.secrets[server_b.spec.id]}
    shown = mosaic("--config", str(at_b), "show", a.id, server_b.population.at(0).local_id, secrets=secrets_b)
    assert shown.returncode == 0, shown.stderr
    assert [copies(server_b, e) for e in queued] == [0, 0, 0], "entries committed for A reached B"
    assert [copies(server_a, e) for e in queued] == [0, 0, 0]
    assert waiting_for(f"practice:{a.id}@{identity_of(a)}") == 3

    status = mosaic("--config", str(at_b), "audit", "status", secrets=secrets_b)
    assert status.returncode == 0, status.stderr
    said = status.stdout.replace("\n", " ")
    assert (f"3 entries wait for {a.name} ({identity_of(a)}), which is no longer configured on this computer"
            in said), status.stdout

    # a config without any `riverside`: show and search work, nothing is sent, no traceback
    only_b = write_directory(tmp_path / "only-b.toml", server_b.practice)
    own_b = {server_b.spec.id: network.secrets[server_b.spec.id]}
    for args in (("show", server_b.spec.id, server_b.population.at(1).local_id), ("search", "smith")):
        ran = mosaic("--config", str(only_b), *args, secrets=own_b)
        assert ran.returncode == 0 and "Traceback" not in ran.stderr and "KeyError" not in ran.stderr, ran.stderr
    assert [copies(server_b, e) for e in queued] == [0, 0, 0]
    assert waiting_for(f"practice:{a.id}@") == 3

    # riverside at A again: the entries go to A, each exactly once (signing in to A makes them due at once,
    # whatever back-off the failed attempts gave them)
    at_a = write_directory(tmp_path / "riverside-at-a.toml", a)
    secrets_a = {a.id: network.secrets[server_a.spec.id]}
    shown = mosaic("--config", str(at_a), "show", a.id, server_a.population.at(4).local_id, secrets=secrets_a)
    assert shown.returncode == 0, shown.stderr
    with Journal.open(default_path(), read_only=True) as journal:
        why = [(d.destination, d.waiting, d.last_error) for d in journal.outbox_status() if d.waiting]
    assert [copies(server_a, e) for e in queued] == [1, 1, 1], why
    assert [copies(server_b, e) for e in queued] == [0, 0, 0]
    assert waiting_for(f"practice:{a.id}@") == 0
    again = mosaic("--config", str(at_a), "show", a.id, server_a.population.at(4).local_id, secrets=secrets_a)
    assert again.returncode == 0, again.stderr
    assert [copies(server_a, e) for e in queued] == [1, 1, 1]


async def test_a_row_queued_by_an_older_mosaic_is_kept_and_reported_never_sent(network, tmp_path: Path) -> None:
    """An older Mosaic wrote `practice:<id>` with no server. Even with `riverside` configured at the very server
    it meant, Mosaic cannot know that: the row is kept, reported, and not sent (see app/core/audit/destinations)."""
    server_a = network.servers[0]
    a = server_a.practice
    patient = server_a.population.at(2)
    with Journal.open() as journal:
        old = journal.append(JournalEntry(action=Action.READ, user=USER, practice_id=a.id, practice_ods=a.ods_code,
                                          patient_local_id=patient.local_id, patient_nhs_number=patient.nhs_number),
                             [f"practice:{a.id}"])  # the outbox row as Mosaic before this change wrote it
    at_a = write_directory(tmp_path / "riverside-at-a.toml", a)
    secrets_a = {a.id: network.secrets[server_a.spec.id]}
    shown = mosaic("--config", str(at_a), "show", a.id, server_a.population.at(3).local_id, secrets=secrets_a)
    assert shown.returncode == 0, shown.stderr
    assert copies(server_a, old.entry_id) == 0
    assert waiting_for(f"practice:{a.id}") == 1
    status = mosaic("--config", str(at_a), "audit", "status", secrets=secrets_a)
    said = status.stdout.replace("\n", " ")
    assert f"1 entry waits for practice '{a.id}' but the server they were meant for was not recorded" in said, said
    assert "queued by an older Mosaic" in said
