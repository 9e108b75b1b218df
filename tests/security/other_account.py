"""Another, unprivileged account on this machine, for tests about who can read what.

CI runs as root: the session creates a system account (no home, no login shell) when it does not exist,
and runs commands as it with `runuser`. Not root and no such account: the tests that need it skip, saying why.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ACCOUNT = "mosaic-other"


@dataclass(frozen=True)
class OtherAccount:
    name: str
    uid: int

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["runuser", "-u", self.name, "--", *argv], capture_output=True, text=True,
                              errors="replace", timeout=30)

    def can_read(self, path: Path) -> bool:
        """Whether this account can read the file (or list the folder) at `path`."""
        argv = ("ls", "-A", str(path)) if path.is_dir() else ("cat", str(path))
        return self.run(*argv).returncode == 0


@pytest.fixture(scope="session")
def other_account() -> OtherAccount:
    if os.geteuid() != 0:
        pytest.skip("needs root to run a command as another account (CI runs as root); this run is not root")
    if shutil.which("runuser") is None:
        pytest.skip("needs runuser (util-linux) to run a command as another account")
    try:
        entry = pwd.getpwnam(ACCOUNT)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", ACCOUNT],
                       check=True, capture_output=True, timeout=60)
        entry = pwd.getpwnam(ACCOUNT)
    return OtherAccount(ACCOUNT, entry.pw_uid)


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder every account can enter (0755, like many home folders), outside pytest's 0700 tmp tree, so
    only the modes Mosaic gives its own files and folders keep another account out."""
    folder = Path(tempfile.mkdtemp(prefix="mosaic-sec-"))
    os.chmod(folder, 0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
