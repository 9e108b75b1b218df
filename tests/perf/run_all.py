"""Run every benchmark (each in its own process), then print machine info and a markdown table.

    python -m tests.perf.run_all [--only bench_gui bench_cold_start] [--markdown FILE]

The table is ready to paste under "Performance" in README.md. Each benchmark is bounded in time
(and killed past its limit); the whole suite takes about 75 seconds on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    from tests.perf import _common as common
except ImportError:  # run as a script: python tests/perf/run_all.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.perf import _common as common

#: benchmark module -> (title in the table, time limit in seconds)
BENCHMARKS: dict[str, tuple[str, int]] = {
    "bench_signin_search": ("Sign-in + first search", 150),
    "bench_open_record": ("Open a record", 60),
    "bench_gui": ("Window (GUI thread, memory)", 200),
    "bench_cold_start": ("Cold start", 150),
    "bench_search_scale": ("Search, 5 × 20,000 patients", 120),
    "bench_policy_notify": ("Access policy and patient notifications", 120),
}


def run(name: str, limit: int, workdir: Path) -> tuple[list[dict], str | None]:
    out = workdir / f"{name}.json"
    cmd = [common.python(), "-m", f"tests.perf.{name}", "--json", str(out)]
    print(f"\n$ {' '.join(cmd[:3])} --json {out.name}", flush=True)
    try:
        done = subprocess.run(cmd, cwd=common.REPO, env=common.child_env(), timeout=limit)
    except subprocess.TimeoutExpired:
        return [], f"stopped after {limit} s"
    if not out.exists():
        return [], f"failed (exit code {done.returncode})"
    figures = json.loads(out.read_text(encoding="utf-8"))
    return figures, None if done.returncode == 0 else f"exit code {done.returncode}"


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(info: dict[str, str], results: dict[str, tuple[list[dict], str | None]], elapsed: float) -> str:
    lines = [
        "Machine: " + "; ".join(f"{k} {v}" for k, v in info.items()) + ".",
        f"Demo practices add {common.LATENCY_MS} ms to every reply unless a row says otherwise. "
        f"Suite run time {elapsed:.0f} s.",
        "",
        "| Benchmark | Figure | Measured | Goal | Verdict |",
        "|---|---|---|---|---|",
    ]
    for name, (figures, problem) in results.items():
        title = BENCHMARKS[name][0]
        if problem:
            lines.append(f"| {title} | (benchmark {cell(problem)}) | | | |")
        for f in figures:
            figure = common.Figure(**f)
            measured = figure.shown() + (f" ({figure.note})" if figure.note else "")
            lines.append(f"| {title} | {cell(figure.figure.strip())} | {cell(measured)} | {cell(figure.goal)} | "
                         f"{figure.verdict()} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run just these benchmarks")
    p.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = p.parse_args(argv)
    info = common.machine_info()
    print("Machine:", flush=True)
    for key, value in info.items():
        print(f"  {key}: {value}", flush=True)
    started = time.perf_counter()
    results: dict[str, tuple[list[dict], str | None]] = {}
    with tempfile.TemporaryDirectory(prefix="mosaic-perf-all-") as tmp:
        for name in args.only or BENCHMARKS:
            results[name] = run(name, BENCHMARKS[name][1], Path(tmp))
    elapsed = time.perf_counter() - started
    table = markdown(info, results, elapsed)
    print("\n" + "=" * 100 + "\n" + table, flush=True)
    if args.markdown:
        args.markdown.write_text(table + "\n", encoding="utf-8")
    failed = [name for name, (_, problem) in results.items() if problem]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
