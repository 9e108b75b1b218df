"""Crash consistency: writers killed with SIGKILL at random moments never leave a broken or lossy journal.

Each round starts two child processes appending to the same journal (as the window and the CLI would),
each printing "seq entry_id" once `append` has returned. The parent kills both at a random moment:
often mid-transaction, sometimes while they are still opening (migrating) the file. Afterwards the
journal must verify, and every entry a child reported must be there at the seq it was given.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from app.core.audit.journal import Journal

REPO = Path(__file__).resolve().parents[2]
ROUNDS = 20

CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path

    from app.core.audit.journal import Journal
    from app.core.audit.model import Action, AuditUser, JournalEntry

    journal = Journal.open(Path(sys.argv[1]))
    user = AuditUser(sys.argv[2], "Crash Test")
    n = 0
    while True:
        n += 1
        entry = JournalEntry(action=Action.READ, user=user, practice_id="A81001", patient_nhs_number="9434765919",
                             sections=("summary",), details={"n": n, "pad": "x" * (n % 7 * 300)})
        stored = journal.append(entry, destinations=["practice:A81001", "central"])
        sys.stdout.write(f"{stored.seq} {stored.entry_id}\\n")
        sys.stdout.flush()
""")


def start(script: Path, path: Path, who: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen([sys.executable, str(script), str(path), who], stdout=subprocess.PIPE, text=True,
                            env=env, cwd=REPO)


def committed(out: str) -> list[tuple[int, str]]:
    """Every complete line a child wrote: each one follows a commit that returned."""
    lines = out.split("\n")[:-1]  # the last piece has no newline: possibly cut short by the kill
    return [(int(seq), entry_id) for seq, entry_id in (line.split() for line in lines)]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_at_random_moments_never_breaks_or_loses_committed_entries(tmp_path: Path, rng_seed: int) -> None:
    rng = random.Random(rng_seed)  # the kill moments; a failure names the seed (--seed N re-runs them)
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    path = tmp_path / "journal.sqlite"
    reported: dict[str, int] = {}
    for round_ in range(ROUNDS):
        children = [start(script, path, f"writer-{n}") for n in range(2)]
        seen = ""
        if round_ % 5 == 0:
            time.sleep(rng.uniform(0.0, 0.4))  # during start-up: import, open, migrate
        else:
            for _ in range(rng.randint(1, 40)):  # wait for some commits by the first child
                line = children[0].stdout.readline()
                if not line:
                    break
                seen += line
            time.sleep(rng.uniform(0.0, 0.004))  # then land anywhere inside a later append
        for child in children:
            child.send_signal(signal.SIGKILL)
        for n, child in enumerate(children):
            out = child.stdout.read()
            child.wait()
            assert child.returncode == -signal.SIGKILL, f"a child ended by itself (round {round_})"
            reported.update({entry_id: seq for seq, entry_id in committed((seen if n == 0 else "") + out)})
        with Journal.open(path) as journal:
            result = journal.verify()
            assert result.ok, f"round {round_}: {result.reason}"
            for entry_id, seq in reported.items():
                stored = journal.get(entry_id)
                assert stored is not None and stored.seq == seq, f"round {round_}: entry {seq} was lost"
    assert len(reported) > ROUNDS
