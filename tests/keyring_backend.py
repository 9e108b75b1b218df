"""A keyring for tests: a real keyring backend kept in a JSON file beside the test's MOSAIC_HOME (or in its
XDG_DATA_HOME when a test uses the platform's folders).

The test process installs it with keyring.set_keyring(); its child processes (`mosaic …` run as a user
would) load the same class through keyring's own PYTHON_KEYRING_BACKEND, so parent and children share
one keyring per test, and no test touches the developer's real keyring. It lives in tests/ and is never
installed: Mosaic itself reads no setting that would pick it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend

BACKEND = "tests.keyring_backend.FileKeyring"


class FileKeyring(KeyringBackend):
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
        temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(data), encoding="utf-8")
        os.replace(temporary, target)

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}\n{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[f"{service}\n{username}"] = password
        self._save(data)

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        data.pop(f"{service}\n{username}", None)
        self._save(data)
