"""Cold start: from just before the parent launches `mosaic --config FILE` to the window first painted.

The parent starts 5 demo practices (100 ms per reply), writes their practice directory with
DemoNetwork.write_config and passes the secrets in the environment. Each run launches a new Python
running tests/perf/_cold_child.py, which calls the real entry point (app.cli.main) unchanged and only
watches for the main window's first paint and for sign-in to finish, then quits. One warm-up launch
(reported apart: the OS file cache may be cold), then the median of 5. Goal: window shown within 1.5 s.

    python -m tests.perf.bench_cold_start [--runs 5] [--json FILE]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    from tests.perf import _common as common
except ImportError:  # run as a script: python tests/perf/bench_cold_start.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.perf import _common as common

NAME = "bench_cold_start"
GOAL_S = 1.5
CHILD = Path(__file__).with_name("_cold_child.py")
RUN_TIMEOUT_S = 45


def launch(config: Path, env: dict[str, str]) -> dict[str, float | str]:
    started = time.time()
    proc = subprocess.Popen([common.python(), str(CHILD), str(config)], cwd=common.REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    ended = time.time()
    marks: dict[str, float | str] = {"exit_code": proc.returncode, "stderr": err.strip()[-500:]}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("started", "shown", "signed_in", "quit"):
            marks[parts[0]] = float(parts[1]) - started
            if parts[0] == "signed_in" and len(parts) > 2:
                marks["online"] = parts[2]
    marks["exited"] = ended - started
    return marks


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args(argv)
    report = common.Report(NAME)
    budget = common.Budget(120)
    print(f"== {NAME}: `mosaic --config FILE` to first paint, 5 practices, {common.LATENCY_MS} ms per reply ==",
          flush=True)
    common.isolate()
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="mosaic-cold-") as tmp, common.demo_network(5) as network:
        config = network.write_config(Path(tmp) / "practices.toml")
        env = common.child_env(**common.secret_env(network))
        first = launch(config, env)
        for _ in range(args.runs):
            if budget.expired() and runs:
                break
            runs.append(launch(config, env))
    for i, run in enumerate([first, *runs]):
        label = "warm-up" if i == 0 else f"run {i}"
        shown = run.get("shown")
        print(f"  {label}: interpreter ready {run.get('started', float('nan')) * 1000:.0f} ms, window shown "
              f"{(shown or float('nan')) * 1000:.0f} ms, signed in {run.get('signed_in', float('nan')) * 1000:.0f} ms"
              f" ({run.get('online', '?')} online), quit to exit "
              f"{(run['exited'] - run.get('quit', run['exited'])) * 1000:.0f} ms, exit code {run['exit_code']}",
              flush=True)
        if run["exit_code"] != 0 or shown is None:
            print(f"    stderr: {run['stderr']}", flush=True)
    shown_runs = [r["shown"] for r in runs if "shown" in r]
    print("figures:", flush=True)
    if not shown_runs:
        report.add("Cold start to window shown", "failed", goal=f"≤ {GOAL_S} s", met=False)
        report.save(args.json)
        return 1
    median_shown = common.median(shown_runs)
    report.add(f"Cold start to window shown (median of {len(shown_runs)})", median_shown, "s",
               goal=f"≤ {GOAL_S} s", met=median_shown <= GOAL_S)
    if "shown" in first:
        report.add("  first launch (warm-up, file cache may be cold)", first["shown"], "s")
    started = [r["started"] for r in runs if "started" in r]
    report.add("  of which interpreter start-up (median)", common.median(started), "s")
    signed = [r["signed_in"] for r in runs if "signed_in" in r]
    if signed:
        report.add("Cold start to all 5 practices signed in (median)", common.median(signed), "s")
    exits = [r["exited"] - r["quit"] for r in runs if "quit" in r]
    if exits:
        report.add("Quit to process exit (median)", common.median(exits), "s",
                   note=f"exit codes {sorted({r['exit_code'] for r in runs})}")
    report.save(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
