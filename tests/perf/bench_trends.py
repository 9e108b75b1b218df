"""Trend charts: what importing pyqtgraph costs, how long each chart takes to build, and the longest GUI-thread
stall while a record's trends panel is put on screen (app/ui/trends.py).

Each run is a fresh process (a module is imported once per process):
- `import`: `import pyqtgraph` (with numpy) timed on the GUI thread, after QApplication exists, as it would be if
  the window imported it itself; it is not done there: Mosaic imports it in a worker thread.
- `panel`: as the window runs, pyqtgraph is imported and warmed at start-up (`prepare`, timed) and the heap
  frozen; then a 5 ms QTimer ticks on the GUI thread while two records' panels of six charts (blood pressure,
  weight, BMI, HbA1c, eGFR, cholesterol) are built, two steps a chart, through the record views' step queue,
  above 2,000 px of other record (its scroll bar already there). It reports each step, the longest gap between
  ticks (minus the interval) and the most CPU time the GUI thread spent between two ticks (what is left of a
  gap on a busy machine, where most of it is waiting for a CPU). Goal: no gap over 50 ms.
- `worker`: the same without `prepare`: the first panel has pyqtgraph imported by a worker thread, and the
  stall while it imports is reported apart.

    python -m tests.perf.bench_trends [--runs 5]
    python -m tests.perf.bench_trends --child import|panel        # one run, prints JSON
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TICK_MS = 5
STALL_GOAL_MS = 50


def _child_import() -> dict[str, Any]:
    from PySide6.QtWidgets import QApplication

    QApplication([])
    started = time.perf_counter()
    import pyqtgraph  # noqa: F401

    return {"import_ms": (time.perf_counter() - started) * 1000}


def _child_panel(worker: bool) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QScrollArea, QVBoxLayout, QWidget

    from app.ui import trends
    from app.ui.record_view import _BUILD_STEPS
    from app.ui.style import STYLE_SHEET
    from tests.trend_samples import record

    app = QApplication([])
    app.setStyleSheet(STYLE_SHEET)
    prepared_ms = 0.0
    if not worker:  # as the window starts (app.ui.app.settle_heap): pyqtgraph imported and warmed before show
        started = time.perf_counter()
        trends.prepare()
        prepared_ms = (time.perf_counter() - started) * 1000
        gc.collect()  # and what exists by then is frozen, as settle_heap does
        gc.freeze()
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    body = QWidget()
    layout = QVBoxLayout(body)
    scroll.setWidget(body)
    filler = QWidget()  # the rest of a record: the scroll bar is there before the charts come, as in a record
    filler.setFixedHeight(2000)
    layout.addWidget(filler)
    scroll.resize(1000, 700)
    scroll.show()
    for _ in range(5):
        app.processEvents()

    # (gap beyond the interval in ms, the GUI thread's CPU time in it in ms, pyqtgraph was imported by then)
    gaps: list[tuple[float, float, bool]] = []
    last = [time.perf_counter(), time.thread_time()]

    def tick() -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        gaps.append(((now - last[0]) * 1000 - TICK_MS, (cpu - last[1]) * 1000, trends.pyqtgraph_ready()))
        last[0], last[1] = now, cpu

    timer = QTimer()
    timer.setTimerType(timer.timerType().PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)
    timer.start()

    steps_ms: list[list[float]] = []
    original_steps = trends.TrendsPanel.build_steps

    def timed_steps(panel: trends.TrendsPanel) -> Any:
        for step in original_steps(panel):
            def timed(step: Any = step) -> None:
                started = time.perf_counter()
                step()
                steps_ms[-1].append((time.perf_counter() - started) * 1000)
            yield timed

    trends.TrendsPanel.build_steps = timed_steps  # type: ignore[method-assign]
    charts = []
    for _ in range(2):  # the first record's panel, then a second one
        steps_ms.append([])
        made = time.perf_counter()
        panel = trends.trends_panel(record())
        assert panel is not None
        layout.addWidget(panel)
        panel.build(_BUILD_STEPS.add)
        while not panel.done:
            app.processEvents()
        for _ in range(10):  # the charts' first layout and paint
            app.processEvents()
        charts.append({"total_ms": (time.perf_counter() - made) * 1000, "charts": len(panel.charts)})
    timer.stop()
    before = [g for g, _, ready in gaps if not ready]
    after = [g for g, _, ready in gaps if ready]
    after_cpu = [c for _, c, ready in gaps if ready]
    return {"prepare_ms": prepared_ms, "steps_ms_first": steps_ms[0], "steps_ms_second": steps_ms[1], "panels": charts,
            "longest_gap_ms_during_import": max(before, default=0.0),
            "longest_gap_ms_after_import": max(after, default=0.0),
            "most_cpu_ms_between_ticks": max(after_cpu, default=0.0)}


def _run_child(kind: str) -> dict[str, Any]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-m", "tests.perf.bench_trends", "--child", kind], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _spread(values: list[float], unit: str = "ms") -> str:
    return f"median {statistics.median(values):.1f} {unit}, max {max(values):.1f} {unit}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", choices=("import", "panel", "worker"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.child:
        result = _child_import() if args.child == "import" else _child_panel(worker=args.child == "worker")
        print(json.dumps(result))
        return
    load = os.getloadavg()[0]
    imports = [_run_child("import")["import_ms"] for _ in range(args.runs)]
    panels = [_run_child("panel") for _ in range(args.runs)]
    workers = [_run_child("worker") for _ in range(args.runs)]
    print(f"bench_trends: {args.runs} runs of each, load average {load:.1f} at the start, "
          f"{os.cpu_count()} CPUs")
    print(f"  import pyqtgraph (with numpy) on the GUI thread: {_spread(imports)}")
    print(f"  start-up, prepare() (import + one unseen chart built and painted): "
          f"{_spread([p['prepare_ms'] for p in panels])}")
    print("  as the window runs (prepared at start-up), six charts, two build steps each:")
    print(f"    one build step, first record: {_spread([ms for p in panels for ms in p['steps_ms_first']])}")
    print(f"    one build step, second record: {_spread([ms for p in panels for ms in p['steps_ms_second']])}")
    print(f"    six-chart panel on screen (steps and paints): "
          f"{_spread([p['panels'][0]['total_ms'] for p in panels])}")
    print(f"    longest GUI-thread stall: {_spread([p['longest_gap_ms_after_import'] for p in panels])} "
          f"(goal <= {STALL_GOAL_MS}); the GUI thread's own CPU in it: "
          f"{_spread([p['most_cpu_ms_between_ticks'] for p in panels])}")
    print("  not prepared (pyqtgraph imported by a worker when the first record with trends opens):")
    print(f"    longest GUI-thread stall while the worker imports: "
          f"{_spread([p['longest_gap_ms_during_import'] for p in workers])}")
    print(f"    longest GUI-thread stall while the charts are built: "
          f"{_spread([p['longest_gap_ms_after_import'] for p in workers])}")


if __name__ == "__main__":
    main()
