"""Shared helpers for the benchmarks: isolated per-user folders, demo networks, figures and reports."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import functools
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
LATENCY_MS = 100  # added by the demo practices to every reply, unless a benchmark says otherwise


# --- environment -----------------------------------------------------------------------------------

_HOME: Path | None = None


def isolate(keep_secrets: bool = False) -> Path:
    """A throw-away MOSAIC_HOME and no machine-wide config, so a run touches nothing of the user's."""
    global _HOME
    if _HOME is None:
        _HOME = Path(tempfile.mkdtemp(prefix="mosaic-perf-"))
        atexit.register(shutil.rmtree, _HOME, True)
        os.environ["MOSAIC_HOME"] = str(_HOME / "home")
        from app.core import paths
        from tests.machine import TEST_MACHINE_DIR_ENV

        paths.MACHINE_DIR = _HOME / "machine"  # in-process; children started by tests.* read the variable
        os.environ[TEST_MACHINE_DIR_ENV] = str(paths.MACHINE_DIR)
        if not keep_secrets:
            for key in list(os.environ):
                if key.startswith("MOSAIC_SECRET_"):
                    del os.environ[key]
        # A benchmark is an unattended run: the journal's key comes from the environment (a machine without
        # an OS keyring could otherwise open no journal, and no record would open).
        import secrets as _secrets

        from app.core.audit.keys import ENV_KEY

        os.environ[ENV_KEY] = _secrets.token_hex(32)
    return _HOME


def secret_env(network: Any) -> dict[str, str]:
    from app.core.secrets import env_name

    return {env_name(pid): secret for pid, secret in network.secrets.items()}


@contextlib.contextmanager
def demo_network(practices: int, patients: int = 2000, latency_ms: float = LATENCY_MS,
                 freeze_gc: bool = True) -> Iterator[Any]:
    """Start demo practices in this process, put their secrets in the environment, stop them after.

    With `freeze_gc`, the demo populations are moved out of the garbage collector's sight once built:
    a remote practice's heap never pauses Mosaic, but an in-process one would (a full collection walks
    every demo patient; see bench_search_scale), which would charge the servers' cost to the client.
    """
    from app.demo.network import DemoNetwork

    isolate()
    network = DemoNetwork.start(practices=practices, patients=patients, latency_ms=latency_ms)
    try:
        os.environ.update(secret_env(network))
        if freeze_gc:
            gc.collect()
            gc.freeze()
        yield network
    finally:
        network.stop()
        if freeze_gc:
            gc.unfreeze()


class ChildNetwork:
    """Demo practices running in a child process (tests/perf/_demo_child.py), seen from the benchmark."""

    def __init__(self, proc: subprocess.Popen[str], config: Path, ready: dict[str, Any]) -> None:
        from app.core.model import Practice

        self._proc = proc
        self.config = config  # the practice directory the child wrote (secrets in config.env)
        self.auth: dict[str, str] = ready["auth"]  # practice id -> sign-in method
        self.nhs: str = ready["nhs"]  # registered at two practices when the network shares patients
        # As the child made them, not read back from `config`: reading a directory merges in this machine's
        # machine-wide one, which a benchmark must not depend on.
        self.practices = [Practice(**fields) for fields in ready["practices"]]

    def stats(self) -> dict[str, Any]:
        """{"requests": served so far, "connections": accepted so far, "times": [time.time() of each request
        since the last call]}; one line each way over a pipe (well under a millisecond)."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write("stats\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the demo child exited (code {self._proc.poll()})")
        return json.loads(line)


@contextlib.contextmanager
def demo_network_process(practices: int, patients: int = 2000,
                         latency_ms: float = LATENCY_MS) -> Iterator[ChildNetwork]:
    """Like `demo_network`, but the demo practices run in a child process, as a real practice's server runs
    on another machine: their threads then cannot take this process's interpreter lock from Mosaic. The
    practices are read from the directory the child writes, and their secrets put in the environment."""
    home = isolate()
    config = Path(tempfile.mkdtemp(prefix="demo-", dir=home)) / "practices.toml"
    cmd = [python(), "-m", "tests.perf._demo_child", "--practices", str(practices), "--patients", str(patients),
           "--latency-ms", str(latency_ms), "--config", str(config)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env(),
                            cwd=REPO)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the demo child exited before it was ready (code {proc.wait()})")
        for raw in config.with_name(config.name + ".env").read_text(encoding="utf-8").splitlines():
            key, sep, value = raw.partition("=")
            if sep:
                os.environ[key] = value
        yield ChildNetwork(proc, config, json.loads(line))
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # the child stops its servers at end of input
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def machine_load() -> str:
    """The load average (1, 5, 15 min) against the cores: other work on the machine slows every figure."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) on {os.cpu_count()} cores"


def count_connections(network: Any) -> Callable[[], int]:
    """Count TCP connections the demo servers accept (wraps each server's public `track` hook).

    Returns a function giving the total so far. Each new connection would cost one more round trip
    (plus one or two for TLS) against a real practice; the demo adds its latency per request only.
    """
    lock = threading.Lock()
    opened = [0]
    for server in network.servers:
        original = server.track

        def track(conn: Any, is_open: bool, _original: Any = original) -> bool:
            if is_open:
                with lock:
                    opened[0] += 1
            return _original(conn, is_open)

        server.track = track
    return lambda: opened[0]


def requests_served(network: Any) -> int:
    return sum(server.requests for server in network.servers)


# --- figures ----------------------------------------------------------------------------------------

def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms(seconds: float) -> float:
    return seconds * 1000.0


@dataclass
class Figure:
    benchmark: str
    figure: str
    value: float | str | None
    unit: str = ""
    goal: str = ""
    met: bool | None = None  # None: no goal
    note: str = ""

    def shown(self) -> str:
        if self.value is None:
            return "n/a"
        if isinstance(self.value, str):
            return self.value
        if self.unit == "ms":
            text = f"{self.value:,.0f} ms"
        elif self.unit == "s":
            text = f"{self.value:.2f} s"
        elif self.unit == "x":
            text = f"{self.value:.2f}×"
        elif self.unit == "MB":
            text = f"{self.value:,.0f} MB"
        elif self.unit:
            text = f"{self.value:g} {self.unit}"
        else:
            text = f"{self.value:g}"
        return text

    def verdict(self) -> str:
        return "" if self.met is None else ("met" if self.met else "**missed**")


@dataclass
class Report:
    """Figures of one benchmark: printed as they come, and written as JSON for run_all."""

    benchmark: str
    figures: list[Figure] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def add(self, figure: str, value: float | str | None, unit: str = "", *, goal: str = "", met: bool | None = None,
            note: str = "") -> Figure:
        item = Figure(self.benchmark, figure, value, unit, goal, met, note)
        self.figures.append(item)
        extra = f"   goal {goal}: {item.verdict() or '-'}" if goal else ""
        print(f"  {figure:<58} {item.shown():>14}{extra}{'   (' + note + ')' if note else ''}", flush=True)
        return item

    def save(self, path: Path | None) -> None:
        elapsed = time.perf_counter() - self.started
        print(f"[{self.benchmark}: {elapsed:.1f} s]", flush=True)
        if path is not None:
            path.write_text(json.dumps([asdict(f) for f in self.figures], indent=1), encoding="utf-8")


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--json", type=Path, help="also write the figures to this file (run_all uses it)")
    return p


class Budget:
    """A wall-clock allowance: loops stop early (with fewer runs) rather than overrun the suite."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def expired(self) -> bool:
        return self.left() <= 0


# --- the GUI thread ----------------------------------------------------------------------------------

def stall_meter(tick_ms: int = 5, goal_ms: float = 50, note_over_ms: float = 20) -> Any:
    """A StallMeter (a QObject): the longest gap between ticks of a `tick_ms` precise QTimer on the GUI
    thread, minus the interval, attributed to the phase current when the gap ends. `start()` it, name
    phases with `set_phase(name)`; read `worst` (phase -> ms), `over` (phase -> gaps over `goal_ms`) and
    `top` ((ms, phase) of every gap over `note_over_ms`). Qt is imported only when one is made."""
    return _stall_meter_class()(tick_ms, goal_ms, note_over_ms)


@functools.cache
def _stall_meter_class() -> type:
    from collections import defaultdict

    from PySide6.QtCore import QObject, Qt, QTimer

    class StallMeter(QObject):
        """Longest gap between ticks of a precise timer, per phase (the phase current when the gap ends)."""

        def __init__(self, tick_ms: int, goal_ms: float, note_over_ms: float) -> None:
            super().__init__()
            self.tick_ms, self.goal_ms, self.note_over_ms = tick_ms, goal_ms, note_over_ms
            self.timer = QTimer(self)
            self.timer.setTimerType(Qt.TimerType.PreciseTimer)
            self.timer.setInterval(tick_ms)
            self.timer.timeout.connect(self._tick)
            self.phase = "idle"
            self.pending: str | None = None
            self.worst: dict[str, float] = defaultdict(float)
            self.over: dict[str, int] = defaultdict(int)
            self.top: list[tuple[float, str]] = []
            self.spans: list[tuple[float, float, str]] = []  # (start, end, phase) of those, perf_counter
            #: (ms, phase, the GUI thread's own CPU ms in that gap) of each gap over note_over_ms: a gap with little
            #: CPU was spent waiting (for the interpreter lock, or for a CPU), one with as much was the GUI's work
            self.top_cpu: list[tuple[float, str, float]] = []
            #: phase -> the GUI thread's longest own CPU between two ticks: what the stall would be with no other
            #: thread wanting the interpreter lock and no other process wanting the CPU
            self.worst_cpu: dict[str, float] = defaultdict(float)
            self.last = time.perf_counter()
            #: MOSAIC_BENCH_WHY=1 only (`watch_scheduler`): where each gap over note_over_ms went, by the kernel's
            #: per-thread run and run-queue times; (ms, phase, text)
            self.sched: SchedWatch | None = None
            self.sched_top: list[tuple[float, str, str]] = []

        def watch_scheduler(self, other_pid: int | None = None) -> None:
            """From now on, say for each long gap what the kernel saw: the GUI thread on a CPU, waiting for
            one, or asleep (the interpreter lock, I/O); this process's other threads' CPU; `other_pid`'s CPU."""
            self.sched = SchedWatch(other_pid)

        @property
        def last(self) -> float:
            """When the current gap began (perf_counter); set by whoever drives the meter to leave out its own
            bookkeeping, on the GUI thread, so that the GUI thread's CPU clock is read with it."""
            return self._last

        @last.setter
        def last(self, value: float) -> None:
            self._last = value
            self._last_cpu = time.thread_time()

        def start(self) -> None:
            self.last = time.perf_counter()
            self.timer.start()

        def leave_out(self, wall_s: float, cpu_s: float) -> None:
            """The GUI thread spent this (wall, own CPU) on the benchmark's own business (asking another
            process to pull a lever): not part of the current gap."""
            self._last += wall_s
            self._last_cpu += cpu_s

        def stop(self) -> None:
            self.timer.stop()

        def set_phase(self, name: str, after_next_tick: bool = False) -> None:
            if after_next_tick:
                self.pending = name
            else:
                self.phase = name

        def longest(self) -> float:
            return max(self.worst.values(), default=0.0)

        def _tick(self) -> None:
            now = time.perf_counter()
            stall = (now - self.last) * 1000 - self.tick_ms
            cpu_ms = (time.thread_time() - self._last_cpu) * 1000
            self.last = now
            self.worst[self.phase] = max(self.worst[self.phase], stall)
            self.worst_cpu[self.phase] = max(self.worst_cpu[self.phase], cpu_ms)
            if stall > self.goal_ms:
                self.over[self.phase] += 1
            if self.sched is not None:
                said = self.sched.since_last(tell=stall > self.note_over_ms)
                if said is not None:
                    self.sched_top.append((stall, self.phase, said))
            if stall > self.note_over_ms:
                self.top.append((stall, self.phase))
                self.top_cpu.append((stall, self.phase, cpu_ms))
                self.spans.append((now - stall / 1000, now, self.phase))
            if self.pending is not None:
                self.phase, self.pending = self.pending, None

    return StallMeter


class SchedWatch:
    """The kernel's account of threads' time (Linux /proc/<pid>/task/<tid>/schedstat: ns on a CPU, ns runnable
    but waiting for one), read at every tick of a stall meter (diagnostics only: ~20 small reads a tick)."""

    def __init__(self, other_pid: int | None) -> None:
        import threading

        self.gui = threading.get_native_id()
        self.other_pid = other_pid
        self.names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
        self.before = self._read()

    def _read(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for label, pid in (("self", os.getpid()), ("other", self.other_pid)):
            if pid is None:
                continue
            with contextlib.suppress(OSError):
                for task in os.listdir(f"/proc/{pid}/task"):
                    with contextlib.suppress(OSError, ValueError):
                        run, wait, _ = Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()
                        out[f"{label}:{task}"] = (int(run), int(wait))
        return out

    def since_last(self, tell: bool) -> str | None:
        """Move the baseline to now; with `tell`, what happened since the last call (else None: nothing is worked
        out for the short gaps that are most of them)."""
        import threading

        now = self._read()
        before, self.before = self.before, now
        if not tell:
            return None
        delta = {k: (v[0] - before.get(k, (0, 0))[0], v[1] - before.get(k, (0, 0))[1]) for k, v in now.items()}
        gui_run, gui_wait = delta.get(f"self:{self.gui}", (0, 0))
        self.names.update({t.native_id: t.name for t in threading.enumerate() if t.native_id is not None})
        others = sorted(((v[0], k) for k, v in delta.items() if k.startswith("self:") and k != f"self:{self.gui}"),
                        reverse=True)[:2]
        other_process = sum(v[0] for k, v in delta.items() if k.startswith("other:"))
        busy = ", ".join(f"{self.names.get(int(k.split(':')[1]), k)} {run / 1e6:.0f}" for run, k in others if run)
        return (f"GUI on a CPU {gui_run / 1e6:.0f} ms, waiting for one {gui_wait / 1e6:.0f} ms; "
                f"other threads {busy or '0'} ms; the other process {other_process / 1e6:.0f} ms")


# --- machine ----------------------------------------------------------------------------------------

def machine_info() -> dict[str, str]:
    info = {
        "Python": platform.python_version(),
        "OS": platform.platform(terse=True),
        "CPU cores (logical)": str(os.cpu_count()),
    }
    with contextlib.suppress(Exception):
        import psutil

        info["CPU cores (physical)"] = str(psutil.cpu_count(logical=False))
        info["Memory"] = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["CPU"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(Exception):
        import PySide6
        from PySide6 import QtCore

        info["PySide6"] = PySide6.__version__
        info["Qt"] = QtCore.qVersion()
    with contextlib.suppress(Exception):
        import httpx2

        info["httpx2"] = httpx2.__version__
    return info


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python: this one, plus the repository on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env.update(extra)
    return env


def python() -> str:
    return sys.executable


class StallSampler:
    """Why the GUI thread stalls (diagnostics for the benchmarks' `--why`): a thread that, while the
    meter has not ticked for `over_ms`, samples the GUI thread's Python stack every millisecond, and a
    gc callback that times every collection. `report()` lists the commonest stacks per phase."""

    def __init__(self, meter: Any, over_ms: float = 25) -> None:
        import gc
        import sys
        import threading
        from collections import Counter

        self.meter, self.over_s = meter, over_ms / 1000
        self.main = threading.main_thread().ident
        self.samples: Counter[tuple[str, str]] = Counter()
        self.gcs: list[tuple[int, float, str]] = []
        self._gc_start = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        sys.setswitchinterval(0.0005)
        gc.callbacks.append(self._gc)
        self._thread.start()

    def _gc(self, what: str, info: dict[str, int]) -> None:
        if what == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gcs.append((info["generation"], (time.perf_counter() - self._gc_start) * 1000, self.meter.phase))

    def _run(self) -> None:
        import sys
        import threading
        import traceback

        while not self._stop.wait(0.001):
            if time.perf_counter() - self.meter.last < self.over_s:
                continue
            for ident, frame in sys._current_frames().items():  # noqa: SLF001 - a sampling profiler's way in
                if ident == threading.get_ident():
                    continue
                stack = traceback.extract_stack(frame)[-int(os.environ.get("MOSAIC_BENCH_WHY_DEPTH", "14")):]
                text = " < ".join(f"{Path(f.filename).stem}:{f.name}:{f.lineno}" for f in reversed(stack))
                where = self.meter.phase if ident == self.main else f"{self.meter.phase}, another thread"
                self.samples[(where, text)] += 1

    def report(self, top: int = 25) -> str:
        import gc

        self._stop.set()
        gc.callbacks.remove(self._gc)
        top = int(os.environ.get("MOSAIC_BENCH_WHY_TOP", top))
        lines = [f"{n:5d} ms  [{phase}] {stack}" for (phase, stack), n in self.samples.most_common(top)]
        slow = sorted((g for g in self.gcs if g[1] > 5), key=lambda g: -g[1])[:15]
        lines += [f"gc gen{gen} {ms_:.1f} ms [{phase}]" for gen, ms_, phase in slow]
        return "\n".join(lines)
