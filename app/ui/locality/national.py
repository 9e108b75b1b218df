"""National (GPAD) files read in a child process, so the window's own process only stores what they give.

Why. Reading the demo's synthetic files (~380,000 rows) is ~1.7 s of Python, and writing them first when the demo's
folder has none ~2.2 s more. In a worker thread of the window's process that held the interpreter lock in 5 ms
turns for those seconds, and its collections (gen-2 passes of 50-90 ms over everything the first refresh had
brought in) stopped the GUI thread outright: stalls of 100-400 ms while the Locality view first opened
(tests/perf/bench_locality.py --why). A child has a lock and a collector of its own. It sends back the figures
a few thousand at a time (one pickle of all 48,000 took ~110 ms to load, a stall of its own), then the report;
the store's write (`store_national`) stays in this process, in the source's worker thread, as before.

A source of files that can be pickled (`demo_files`) is called in the child too; any other (a lambda) is
called here, in a worker thread. Where no child can be started (a frozen bundle runs no `-m` module) the files
are read here, as `import_gpad` would.

    python -m app.ui.locality.national   (the child: a pickled source on stdin, pickled messages on stdout)
"""

from __future__ import annotations

import contextlib
import functools
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from app.insight.gpad import ImportReport, read_national
from app.insight.national_model import NationalFigure

#: figures a message (unpickling 2,000 takes ~5 ms of the receiving thread)
CHUNK = 2000
#: the child's niceness above this process's: the window's process comes first on a busy machine
CHILD_NICENESS = 5
NationalFiles = Callable[[], Sequence[Path]]


def synthetic_files(folder: Path) -> list[Path]:
    """The demo's synthetic GPAD files in `folder`, written there first if they are not (the same seed)."""
    from app.demo.gpad_synthetic import ensure_synthetic_gpad

    return list(ensure_synthetic_gpad(folder).all)


def demo_files(folder: Path) -> NationalFiles:
    """A source for `use_national_files` that the child can call itself (it pickles): `mosaic demo`'s files."""
    return functools.partial(synthetic_files, Path(folder))


class NationalRead:
    """One read of national files, in a child when one can be started. `files()` first (to journal them), then
    `result()`; `close()` always (it ends the child if the read is given up)."""

    def __init__(self, source: NationalFiles) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._files: list[str] | None = None
        self._source = source
        request = _pickled(source)
        if request is None:  # called here: a lambda or a closure cannot go to the child
            self._files = [str(p) for p in source()]
            request = pickle.dumps(self._files)
        self._proc = _start_child(request)

    def files(self) -> list[str]:
        if self._files is None:
            if self._proc is None:
                self._files = [str(p) for p in self._source()]
            else:
                self._files = list(self._expect("files"))
        return self._files

    def result(self) -> tuple[list[NationalFigure], ImportReport]:
        files = self.files()
        if self._proc is None:
            return read_national(files)
        figures: list[NationalFigure] = []
        while True:
            kind, payload = self._message()
            if kind == "figures":
                figures.extend(payload)
            elif kind == "files":  # the files named here already (a source the child could not be given)
                continue
            elif kind == "report":
                return figures, payload
            else:
                raise RuntimeError(f"the national files' reader sent {kind!r}")

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()

    def _expect(self, kind: str) -> Any:
        got, payload = self._message()
        if got != kind:
            raise RuntimeError(f"the national files' reader sent {got!r}, not {kind!r}")
        return payload

    def _message(self) -> tuple[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            kind, payload = pickle.load(self._proc.stdout)
        except EOFError:
            code = self._proc.wait()
            raise RuntimeError(f"the national files' reader ended (exit code {code}) before it finished") from None
        if kind == "error":
            raise payload
        return kind, payload


def _pickled(source: NationalFiles) -> bytes | None:
    try:
        return pickle.dumps(source)
    except (pickle.PicklingError, AttributeError, TypeError):
        return None


def _start_child(request: bytes) -> subprocess.Popen[bytes] | None:
    """The child reading the files, or None where none can run (a frozen bundle, or it failed to start)."""
    if getattr(sys, "frozen", False):
        return None
    from app.core import child_process

    root = Path(__file__).resolve().parents[3]  # the folder holding the `app` package
    env = child_process.child_env()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    try:
        proc = child_process.spawn([sys.executable, "-m", "app.ui.locality.national"], env=env, cwd=str(root),
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None)
    except OSError:
        return None
    assert proc.stdin is not None
    try:
        proc.stdin.write(request)
        proc.stdin.close()
    except OSError:  # it ended at once: its exit is read as the first message's end
        pass
    return proc


def messages(source: NationalFiles | Sequence[str]) -> Iterator[tuple[str, Any]]:
    """What the child sends: ("files", [path]), ("figures", [NationalFigure]) a CHUNK at a time, ("report", …)."""
    files = [str(p) for p in (source() if callable(source) else source)]
    yield "files", files
    figures, report = read_national(files)
    for at in range(0, len(figures), CHUNK):
        yield "figures", figures[at:at + CHUNK]
    yield "report", report


def _child(stdin: IO[bytes], stdout: IO[bytes]) -> int:
    with contextlib.suppress(OSError, AttributeError):  # no os.nice on Windows
        os.nice(CHILD_NICENESS)
    source = pickle.load(stdin)
    try:
        for message in messages(source):
            pickle.dump(message, stdout, protocol=pickle.HIGHEST_PROTOCOL)
            stdout.flush()
    except Exception as exc:  # noqa: BLE001 - whatever it is, the parent raises it by name
        try:
            pickle.dumps(exc)
        except Exception:  # noqa: BLE001 - an exception that does not pickle goes as its words
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        pickle.dump(("error", exc), stdout)
        stdout.flush()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.stdin.buffer, sys.stdout.buffer))
