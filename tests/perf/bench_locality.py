"""The Locality view's GUI-thread stalls (issue 13: never over 50 ms while charts draw).

Opens the real window on demo practices (in this process, as `mosaic demo` does, pyqtgraph prepared at start as
app.ui.app.settle_heap does), opens the Locality view (first open: every practice refreshed, the synthetic
national files imported), then runs a series of queries (measures, zoom, cuts, weeks, a range), each drawn on the
charts; a 5 ms precise timer on the GUI thread records the longest gap per phase.

    nice -n 19 .venv/bin/python -m tests.perf.bench_locality [--patients N] [--json FILE]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from tests.perf import _common as common

NAME = "locality"
TICK_MS = 5
GOAL_MS = 50.0


def wait(signal: Any, timeout_s: float) -> list[Any]:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    got: list[Any] = []

    def heard(*args: Any) -> None:
        got.extend(args)
        loop.quit()

    signal.connect(heard)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    signal.disconnect(heard)
    if not got:
        raise TimeoutError(f"nothing within {timeout_s} s")
    return got


def run(patients: int, why: bool = False) -> dict[str, Any]:
    common.isolate()
    from app.core.secrets import env_name
    from app.demo.gpad_synthetic import ensure_synthetic_gpad
    from app.demo.network import DemoNetwork
    from app.demo.sizes import gp_connect_indexes
    from app.ui.app import build_window, settle_heap
    from app.ui.locality.source import use_national_files

    network = DemoNetwork.start(practices=5, patients=patients, gp_connect=gp_connect_indexes(5))
    for practice_id, secret in network.secrets.items():
        os.environ[env_name(practice_id)] = secret
    folder = Path(os.environ["MOSAIC_HOME"]) / "gpad"
    use_national_files(lambda: ensure_synthetic_gpad(folder).all)
    win, bridge = build_window(network.practices)
    out: dict[str, Any] = {"patients": patients}
    try:
        settle_heap()
        win.show()
        wait(win.sign_in_finished, 60)
        meter = common.stall_meter(TICK_MS, GOAL_MS)
        meter.start()
        sampler = common.StallSampler(meter) if why else None
        meter.set_phase("open + refresh + first figures")
        began = time.perf_counter()
        view = win.open_locality()
        assert view is not None
        wait(view.figures_shown, 180)
        out["first_open_s"] = round(time.perf_counter() - began, 2)
        bar = view.controls
        steps = [(bar.measure, "dna_rate"), (bar.measure, "utilisation"), (bar.measure, "appointments_per_1000"),
                 (bar.zoom, network.practices[0].id), (bar.cut, "mode"), (bar.cut, "category"),
                 (bar.grain, "week"), (bar.grain, "range"), (bar.zoom, ""), (bar.measure, "same_day_share"),
                 (bar.grain, "month"), (bar.mode, "telephone")]
        meter.set_phase("queries drawn")
        times = []
        for box, value in steps:
            began = time.perf_counter()
            box.setCurrentIndex(box.findData(value))
            wait(view.figures_shown, 60)
            times.append(round((time.perf_counter() - began) * 1000))
        meter.stop()
        out["query_to_drawn_ms"] = times
        out["stall_ms"] = {k: round(v, 1) for k, v in meter.worst.items()}
        out["stalls_over_goal"] = dict(meter.over)
        out["top_stalls"] = sorted(meter.top, reverse=True)[:8]
        out["machine_load"] = common.machine_load()
        if sampler is not None:
            out["why"] = sampler.report().splitlines()
    finally:
        win.close()
        bridge.shutdown(win.core)
        network.stop()
    return out


def main() -> int:
    parser = common.parser(__doc__ or NAME)
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--why", action="store_true", help="sample the GUI thread's stack during stalls")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from app.ui.app import ensure_application

    ensure_application()
    out = run(args.patients, args.why)
    print(json.dumps(out, indent=2))
    if getattr(args, "json", None):
        Path(args.json).write_text(json.dumps(out, indent=2), encoding="utf-8")
    return 0 if max(out["stall_ms"].values()) <= GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
