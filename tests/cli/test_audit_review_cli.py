"""`mosaic audit review ENTRY_ID --note TEXT` and the review status `mosaic audit flagged` shows (in-process, a real
policy file, the demo practices)."""

from __future__ import annotations

import json

from app.cli import main
from app.core import os_account
from tests.cli.test_policy_cli import cli, show  # noqa: F401 - the fixture
from tests.core.test_policy import a_patient, policy_text, write_policy

NOTE = "Checked with Dr Patel: safeguarding referral that day; no further action"


def flagged(capsys) -> list[dict]:
    assert main(["audit", "flagged", "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_review_marks_a_flagged_entry_reviewed_journaled_and_sent_to_the_practice(cli, network, tmp_path,  # noqa: F811
                                                                                   monkeypatch, capsys) -> None:
    server = network.servers[0]  # FHIR R4: takes AuditEvents
    patient = a_patient(server)
    write_policy(tmp_path, policy_text(restricted={server.practice.id: [patient.nhs_number]}), monkeypatch)
    assert show(cli, "--break-glass", "--reason", "Safeguarding referral", server.practice.id,
                patient.nhs_number) == 0
    capsys.readouterr()
    [entry] = flagged(capsys)
    assert entry["reviewed"] is False and entry["reviews"] == []
    assert main(["audit", "flagged"]) == 0
    text = capsys.readouterr()
    assert f"not reviewed: mosaic audit review {entry['entry_id']} --note TEXT" in text.out
    assert "1 flagged entries, 0 reviewed" in text.err

    # never by whoever made the access (four eyes): nothing journaled
    assert main(["--config", str(cli), "audit", "review", entry["entry_id"], "--note", NOTE]) == 2
    assert "is your own access (jbloggs)" in capsys.readouterr().err
    assert flagged(capsys)[0]["reviews"] == []

    monkeypatch.setattr(os_account, "os_login", lambda: "pjones")  # the privacy officer, at the same computer
    assert main(["--config", str(cli), "audit", "review", entry["entry_id"], "--note", NOTE]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Reviewed by pjones on ") and NOTE in out

    [again] = flagged(capsys)
    assert again["entry_id"] == entry["entry_id"] and again["reviewed"] is True
    [review] = again["reviews"]
    assert review["reviewer"] == "pjones" and review["note"] == NOTE
    assert main(["audit", "flagged"]) == 0
    text = capsys.readouterr()
    assert "Reviewed by pjones on " in text.out and NOTE in text.out and "1 flagged entries, 1 reviewed" in text.err

    assert main(["audit", "list", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    [journaled] = [e for e in listed if e["action"] == "review"]
    assert journaled["details"]["reviewed"] == entry["entry_id"] and journaled["details"]["note"] == NOTE
    assert journaled["user_login"] == "pjones" and journaled["patient_nhs_number"] == patient.nhs_number
    assert journaled["practice_id"] == server.practice.id

    # upstream, as its own AuditEvent ("Audit Log Used"), beside the break-glass open's (never in its place)
    events = server.audit.search(None, None)
    reviews = [e for e in events if e["type"].get("code") == "110101"]
    assert len(reviews) == 1
    details = {d["type"]: d["valueString"] for e in reviews[0]["entity"] for d in e.get("detail", ())}
    assert details == {"reviewed-entry": f"urn:uuid:{entry['entry_id']}", "note": NOTE}
    ids = {i["value"] for e in events for ent in e["entity"] if (i := ent.get("what", {}).get("identifier"))
           and i.get("system") == "https://mosaic.example/audit-entry-id"}
    assert f"urn:uuid:{entry['entry_id']}" in ids and f"urn:uuid:{journaled['entry_id']}" in ids


def test_review_refuses_an_unflagged_entry_an_unknown_one_and_an_empty_note(cli, network, capsys) -> None:  # noqa: F811
    server = network.servers[2]
    assert show(cli, server.practice.id, a_patient(server).nhs_number) == 0
    capsys.readouterr()
    assert main(["audit", "list", "--json"]) == 0
    read = next(json.loads(line) for line in capsys.readouterr().out.splitlines() if '"read"' in line)
    assert main(["--config", str(cli), "audit", "review", read["entry_id"], "--note", NOTE]) == 2
    assert "is not flagged for review" in capsys.readouterr().err
    assert main(["--config", str(cli), "audit", "review", "no-such-entry", "--note", NOTE]) == 2
    assert "No entry no-such-entry" in capsys.readouterr().err
    assert main(["--config", str(cli), "audit", "review", read["entry_id"], "--note", "  "]) == 2
    assert "Write a note" in capsys.readouterr().err
    assert main(["audit", "list", "--json"]) == 0
    assert '"review"' not in capsys.readouterr().out, "nothing journaled"
