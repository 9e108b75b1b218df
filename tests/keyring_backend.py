"""A keyring for tests: a real keyring backend kept in a JSON file beside the test's MOSAIC_HOME (or in its
XDG_DATA_HOME when a test uses the platform's folders).

The test process installs it with keyring.set_keyring(); its child processes (`mosaic …` run as a user
would) load the same class through keyring's own PYTHON_KEYRING_BACKEND, so parent and children share
one keyring per test, and no test touches the developer's real keyring. It lives in tests/ and is never
installed: Mosaic itself reads no setting that would pick it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from keyring.backend import KeyringBackend

BACKEND = "tests.keyring_backend.FileKeyring"


_LOCK = threading.Lock()


class FileKeyring(KeyringBackend):
    """Each call is atomic, as a real keyring's are: a lock across threads (and, with fcntl, processes)
    around read, change and write, and a temporary file of its own for each write (several threads of one
    process once wrote the same temporary file and one rename failed)."""

    priority = 1  # type: ignore[assignment]

    @staticmethod
    def _file() -> Path:
        home = os.environ.get("MOSAIC_HOME")
        if home:
            return Path(home).parent / "test-keyring.json"
        # the platform's folders (a test without MOSAIC_HOME): in the per-user data folder, else the home folder
        return Path(os.environ.get("XDG_DATA_HOME") or Path.home()) / "test-keyring.json"

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self._file().read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return dict(data)

    def _save(self, data: dict[str, str]) -> None:
        target = self._file()
        handle, name = tempfile.mkstemp(prefix=f"{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(json.dumps(data))
        os.replace(name, target)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with _LOCK:
            target = self._file()
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target.with_name(target.name + ".lock"), "a", encoding="utf-8") as lock_file:
                try:
                    import fcntl
                except ImportError:  # not on Windows: the thread lock alone
                    yield
                    return
                fcntl.flock(lock_file, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(lock_file, fcntl.LOCK_UN)

    def get_password(self, service: str, username: str) -> str | None:
        with self._locked():
            return self._load().get(f"{service}\n{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        with self._locked():
            data = self._load()
            data[f"{service}\n{username}"] = password
            self._save(data)

    def delete_password(self, service: str, username: str) -> None:
        with self._locked():
            data = self._load()
            data.pop(f"{service}\n{username}", None)
            self._save(data)
