"""Where per-user and machine-wide files live. MOSAIC_HOME, when set, holds every per-user file."""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import stat
import sys
from pathlib import Path
from typing import cast

import platformdirs

from app.core import child_process

APP = "mosaic"


def home() -> Path | None:
    value = os.environ.get("MOSAIC_HOME")
    return Path(value).expanduser() if value else None


def user_config_dir() -> Path:
    return home() or Path(platformdirs.user_config_dir(APP, appauthor=False))


def user_data_dir() -> Path:
    h = home()
    return h / "data" if h else Path(platformdirs.user_data_dir(APP, appauthor=False))


def user_log_dir() -> Path:
    h = home()
    return h / "logs" if h else Path(platformdirs.user_log_dir(APP, appauthor=False))


def user_config_file() -> Path:
    return user_config_dir() / "practices.toml"


def _platform_machine_dir() -> Path:
    """The folder IT deploys Mosaic's machine-wide files to: fixed per OS, never taken from the environment
    (a variable such as PROGRAMDATA is the user's to set). Windows: the folder Group Policy names
    (HKLM\\SOFTWARE\\Policies\\Mosaic\\MachineFolder, admin-only: app/core/group_policy.py), else the common
    application data folder as the shell names it (SHGetFolderPathW, CSIDL_COMMON_APPDATA); not exercised by the
    tests. Elsewhere nothing moves it."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        import ctypes

        from app.core import group_policy

        chosen = group_policy.read_group_policy().machine_folder
        if chosen:
            return Path(chosen)

        buffer = ctypes.create_unicode_buffer(260)
        shell32 = ctypes.WinDLL("shell32")  # type: ignore[attr-defined,unused-ignore]
        if shell32.SHGetFolderPathW(None, 0x23, None, 0, buffer) == 0 and buffer.value:  # CSIDL_COMMON_APPDATA
            return Path(buffer.value) / "Mosaic"
        return Path(r"C:\ProgramData\Mosaic")
    return Path("/etc/mosaic")


#: Where the machine-wide files are (practices.toml, and the policy it names). There is no switch for it in the
#: installed program: no environment variable, argument or per-user file moves it (on Windows, only the machine's
#: Group Policy can). Tests replace this attribute
#: in-process (monkeypatch; tests/cli_launcher.py for the CLI in a subprocess).
MACHINE_DIR: Path = _platform_machine_dir()


def machine_config_file() -> Path:
    """The practice directory IT deploys: /etc/mosaic/practices.toml, %PROGRAMDATA%\\Mosaic\\practices.toml."""
    return MACHINE_DIR / "practices.toml"


# --- user-only files and folders ----------------------------------------------------------------------
#
# Every folder and file Mosaic makes for patient data (journal, notify queue, logs, exports, the per-user
# folders) is made here, user-only from the first byte: folders 0700, files 0600 (created with that mode,
# never chmod-ed down after data is in them), and the ones an older Mosaic left readable are tightened when
# opened. SQLite makes a database's -wal, -shm and -journal files itself, with the database file's mode: so
# `private_file` creates the database file 0600 before SQLite ever opens it. On Windows the same calls set
# a user-only ACL with `icacls` (stdlib subprocess; inheritance removed, full control to this account's
# SID only), and files inherit it from their folder.

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


class PrivateFileError(OSError):
    """A secret or private file could not be made safely (e.g. it already exists, or is a symlink)."""


def mosaic_roots() -> tuple[Path, ...]:
    """The folders Mosaic owns: MOSAIC_HOME when set, else the platform's per-user config, data and log folders."""
    h = home()
    if h is not None:
        return (h,)
    return (user_config_dir(), user_data_dir(), user_log_dir())


def private_dir(path: Path) -> Path:
    """Make `path` a user-only folder (0700), creating it and any missing parents 0700.

    Folders Mosaic owns (a root from `mosaic_roots` and every folder below it down to `path`) are tightened
    to 0700 when they already exist; a folder Mosaic does not own (e.g. the one an export is written to) is
    left as the user made it.
    """
    path = Path(path).expanduser()
    missing: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, PRIVATE_DIR_MODE)
        except FileExistsError:
            continue  # another process made it at the same moment: tightened below if it is ours
        _restrict(folder, is_dir=True)
    for folder in _owned_folders(path):
        if folder not in missing:
            _restrict(folder, is_dir=True)
    return path


def _owned_folders(path: Path) -> list[Path]:
    """The folders from the Mosaic root that holds `path` down to `path` itself; [] if no root holds it."""
    resolved = path.absolute()
    for root in mosaic_roots():
        root = root.absolute()
        if resolved == root or root in resolved.parents:
            chain = [resolved]
            chain.extend(p for p in resolved.parents if p == root or root in p.parents)
            return [p for p in chain if p.is_dir()]
    return []


def private_file(path: Path) -> Path:
    """Make sure `path` exists as a user-only file (0600) without writing to it: created 0600 if missing, an
    existing one tightened. Its folder is made with `private_dir`. Used for SQLite databases, so SQLite's own
    -wal/-shm/-journal files (which take the database file's mode) are user-only too; existing side files
    from an older Mosaic are tightened here as well."""
    path = Path(path).expanduser()
    private_dir(path.parent)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE_MODE)
    try:
        _restrict_fd(fd, path)
    finally:
        os.close(fd)
    for suffix in SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            _restrict(side, is_dir=False)
    return path


def open_private(path: Path | str, mode: str = "w", *, encoding: str | None = "utf-8",
                 newline: str | None = None, errors: str | None = None) -> io.TextIOWrapper:
    """`open(path, mode)` for writing text ("w", "a" or "x") whose file is user-only: created
    0600, or an existing one tightened before anything is written to it."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    if "a" in mode:
        flags |= os.O_APPEND
    elif "x" in mode:
        flags |= os.O_EXCL
    elif "w" in mode:
        flags |= os.O_TRUNC
    if "b" in mode or not any(c in mode for c in "awx"):
        raise ValueError(f"open_private is for writing text, not mode {mode!r}")
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    try:
        _restrict_fd(fd, path)
        text_mode = "a" if "a" in mode else "w"
        return cast(io.TextIOWrapper, os.fdopen(fd, text_mode, encoding=encoding, newline=newline, errors=errors))
    except BaseException:
        os.close(fd)
        raise


def write_private_text(path: Path, text: str, *, encoding: str = "utf-8") -> None:
    """Write `text` to `path` as a new user-only file replacing it in one step (`write_private_bytes`); the folder
    is the user's choice."""
    write_private_bytes(path, text.encode(encoding))


def write_private_bytes(path: Path | str, data: bytes) -> None:
    """Write `data` to `path` as a new user-only file (0600) that replaces whatever was there in one step: a PDF
    or other binary export; the folder is the user's choice. See `replace_file`."""
    replace_file(path, data, private=True)


def replace_file(path: Path | str, data: bytes, *, private: bool) -> None:
    """`data` written whole to a new file beside `path` (made by this account: user-only, or 0644 when not
    `private`), then renamed over `path`: a reader never sees half a file, and an existing file, a link or
    another account's file at `path` is replaced, never written into (its mode and owner would stay)."""
    import tempfile

    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)  # O_EXCL, 0600
    try:
        try:
            if private:
                _restrict_fd(fd, Path(name))
            elif hasattr(os, "fchmod"):
                os.fchmod(fd, 0o644)
            out = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            raise
        with out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


def create_secret_file(path: Path | str, *, replace_own: bool = False) -> io.TextIOWrapper:
    """A new file for secrets, opened for writing: created exclusively (O_CREAT | O_EXCL | O_NOFOLLOW, 0600),
    never a file or symlink that is already there (another account may have made it first to read what is
    written, or pointed it elsewhere). With `replace_own`, a plain file this account owns is removed first
    (writing the same demo config again); a link, or a file another account owns, is still refused."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    if replace_own:
        _remove_own_file(path)
    try:
        fd = os.open(path, flags, PRIVATE_FILE_MODE)
    except FileExistsError as exc:
        raise PrivateFileError(exc.errno, f"{path} is already there and was not made by Mosaic just now "
                                          "(a file or link); remove it or choose another name", str(path)) from exc
    try:
        _restrict_fd(fd, path)
        return cast(io.TextIOWrapper, os.fdopen(fd, "w", encoding="utf-8"))
    except BaseException:
        os.close(fd)
        raise


def _remove_own_file(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise PrivateFileError(errno.EEXIST, f"{path} is a link; Mosaic writes secrets only to a file it creates. "
                                             "Remove the link or choose another name", str(path))
    if not stat.S_ISREG(st.st_mode) or (sys.platform != "win32" and st.st_uid != os.geteuid()):
        raise PrivateFileError(errno.EEXIST, f"{path} is already there and belongs to another account (or is not "
                                             "a plain file); remove it or choose another name", str(path))
    os.unlink(path)


def _restrict_fd(fd: int, path: Path) -> None:
    if sys.platform == "win32":
        _windows_user_only(path, is_dir=False)
        return
    st = os.fstat(fd)
    if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) != PRIVATE_FILE_MODE:
        os.fchmod(fd, PRIVATE_FILE_MODE)


def _restrict(path: Path, *, is_dir: bool) -> None:
    if sys.platform == "win32":
        _windows_user_only(path, is_dir=is_dir)
        return
    want = PRIVATE_DIR_MODE if is_dir else PRIVATE_FILE_MODE
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.geteuid():
        return  # not ours to change (a link to another folder, or another account's file)
    if stat.S_IMODE(st.st_mode) != want:
        os.chmod(path, want)


def _windows_user_only(path: Path, *, is_dir: bool) -> None:  # pragma: no cover - Windows only
    """Replace `path`'s ACL with full control for this account only (no inherited entries).

    Uses the stdlib and icacls (part of Windows); the account is named by its SID from `whoami /user`,
    never by an environment variable. Not exercised by the tests, which run on Linux.
    """
    sid = _windows_sid()
    grant = f"*{sid}:(OI)(CI)F" if is_dir else f"*{sid}:F"
    child_process.run(["icacls", str(path), "/inheritance:r", "/grant:r", grant], check=True,
                      capture_output=True, timeout=30)


@functools.cache
def _windows_sid() -> str:  # pragma: no cover - Windows only
    out = child_process.run(["whoami", "/user", "/fo", "csv", "/nh"], check=True, capture_output=True, text=True,
                            timeout=30).stdout
    return out.strip().rsplit(",", 1)[-1].strip().strip('"')
