"""Mosaic benchmarks: plain scripts that print figures. Not collected by pytest (norecursedirs).

How to run (from the repository root, with the project installed in the venv):

    python -m tests.perf.run_all                 # every benchmark, then a markdown table for the README
    python -m tests.perf.bench_signin_search     # one benchmark (also: python tests/perf/bench_gui.py)

Each benchmark starts its own demo practices (real HTTP servers on 127.0.0.1, 100 ms added to every
reply unless it says otherwise), bounds its own run time, stops its servers, and accepts `--json FILE`
(used by run_all to collect the figures). GUI benchmarks run Qt offscreen. The whole suite takes about
75 seconds on a 2-core machine.
"""
