"""Whether a machine-wide file (practices.toml, the access policy, a key file it names) can be changed by anyone but
root: POSIX, checked as OpenSSH's StrictModes checks a key file.

The file and every folder above it, up to /, must be owned by root (uid 0) and not writable by group or others (a
folder that is, but sticky and owned by root, such as /tmp, is allowed: nobody else can rename or remove what root
put in it). Each component is looked at with lstat, never followed unseen: a link is itself checked (owned by root)
and then its target, component by component from / (or from the link's folder), so a link from the machine folder
into an ordinary account's folder is refused for that folder, whoever owns the file at its end. An account that can
change any of these can rewrite the file, or swap it for one of its own: the practices' servers (and the secrets
sent to them), the access policy, the key that signs as the practice.

Windows is not checked here (the owner and ACL of ProgramData's folder are IT's: README, Security).
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

#: links followed before giving up (Linux's own limit)
MAX_LINKS = 40


@dataclass(frozen=True)
class Unsafe:
    """Why a machine file is not root's alone: the component at fault, what is wrong with it, and the link through
    which the path reached it (None: on the path as written)."""

    component: Path
    kind: str  # "file", "folder" or "link"
    problem: str
    via: Path | None = None

    def __str__(self) -> str:
        through = f" (reached through the link {self.via})" if self.via is not None else ""
        return f"the {self.kind} {self.component}{through} {self.problem}"

    def action(self, file_mode: str = "0644") -> str:
        """The commands that make it root's: `file_mode` for the file itself (go-w for a private key)."""
        if self.kind == "link":
            return f"chown -h root:root {self.component} (or replace the link by the file itself)"
        mode = file_mode if self.kind == "file" else "go-w"
        return f"chown root:root {self.component} && chmod {mode} {self.component}"


def root_only_problem(path: Path | str) -> Unsafe | None:
    """None when `path` and every folder above it (links followed, each checked) are root's alone; else why not.
    Always None on Windows."""
    if sys.platform == "win32":
        return None
    path = Path(path)
    if not path.is_absolute():
        path = Path.cwd() / path
    current = Path(path.anchor)
    found = _problem(current, folder=True, via=None)
    if found is not None:
        return found
    pending = list(path.parts[1:])
    via: Path | None = None
    links = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":  # `current` has no links in it: its parent is the real one
            current = current.parent
            continue
        candidate = current / part
        try:
            info = os.lstat(candidate)
        except OSError as exc:
            return Unsafe(candidate, "file" if not pending else "folder",
                          f"cannot be checked ({exc.strerror or exc})", via)
        if stat.S_ISLNK(info.st_mode):
            if info.st_uid != 0:
                return Unsafe(candidate, "link", f"is owned by {_owner(info.st_uid)}, not root", via)
            links += 1
            if links > MAX_LINKS:
                return Unsafe(candidate, "link", f"leads through more than {MAX_LINKS} links", via)
            target = Path(os.readlink(candidate))
            via = via or candidate
            if target.is_absolute():
                current = Path(target.anchor)
                found = _problem(current, folder=True, via=via)
                if found is not None:
                    return found
                pending = list(target.parts[1:]) + pending
            else:
                pending = list(target.parts) + pending
            continue
        found = _problem(candidate, folder=bool(pending), via=via, info=info)
        if found is not None:
            return found
        current = candidate
    return None


def _problem(path: Path, *, folder: bool, via: Path | None, info: os.stat_result | None = None) -> Unsafe | None:
    info = info or os.lstat(path)
    kind = "folder" if folder else "file"
    if info.st_uid != 0:
        return Unsafe(path, kind, f"is owned by {_owner(info.st_uid)}, not root", via)
    mode = stat.S_IMODE(info.st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH) and not (folder and mode & stat.S_ISVTX):
        return Unsafe(path, kind, f"is writable by group or others (mode {mode:04o})", via)
    return None


def _owner(uid: int) -> str:
    try:
        import pwd

        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except (ImportError, KeyError):
        return f"uid {uid}"
