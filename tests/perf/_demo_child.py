"""Demo practices in a process of their own, for benchmarks that time Mosaic as a client.

A real practice's server runs on another machine. Started in the benchmark's own process, the demo
servers' threads compete with Mosaic's event loop for the interpreter lock (at 20 practices ~50 ms of
their CPU per sign-in + search, in bursts just when the replies are due), so the figure would time some
of the demo too. This child runs them instead (`common.demo_network_process` starts it):

    python -m tests.perf._demo_child --practices N --patients P --latency-ms L --config FILE

It starts `DemoNetwork.start(N, P, L)` (the same practices `common.demo_network` makes), writes the
practice directory to FILE and the secrets to FILE.env (as `mosaic demo-server --write-config`
does), then prints one JSON line: {"ready": true, "auth": {practice id: auth}, "nhs": an NHS number
registered at two practices (or else one at the first practice), "practices": [each Practice as a
dict]}. Each line "stats" on stdin is answered with one JSON line {"requests": total served,
"connections": total accepted, "times": [time.time() each request arrived], "answered":
[time.time() each reply was written], both for the requests answered since the last "stats"}.
End of stdin stops the servers.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--practices", type=int, required=True)
    p.add_argument("--patients", type=int, default=2000)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--config", type=Path, required=True)
    args = p.parse_args(argv)

    from app.demo.network import DemoNetwork

    network = DemoNetwork.start(practices=args.practices, patients=args.patients, latency_ms=args.latency_ms)
    lock = threading.Lock()
    times: list[float] = []  # when each request arrived
    answered: list[float] = []  # when each reply had been written
    connections = [0]
    for server in network.servers:
        handle, track = server.handle, server.track

        def counted_handle(h: Any, _handle: Any = handle) -> None:
            received = time.time()
            try:
                _handle(h)
            finally:
                with lock:
                    times.append(received)
                    answered.append(time.time())

        def counted_track(conn: Any, is_open: bool, _track: Any = track) -> bool:
            if is_open:
                with lock:
                    connections[0] += 1
            return bool(_track(conn, is_open))

        server.handle = counted_handle  # type: ignore[method-assign]
        server.track = counted_track  # type: ignore[method-assign]
    gc.collect()
    gc.freeze()  # the populations stay for the process's life: keep them out of the collector's walks
    try:
        network.write_config(args.config)
        shared = network.shared_patients[0].nhs_number if network.shared_patients else None
        nhs = shared or network.servers[0].population.at(0).nhs_number
        print(json.dumps({"ready": True, "auth": {s.spec.id: s.spec.auth for s in network.servers},
                          "nhs": nhs, "practices": [dataclasses.asdict(p) for p in network.practices]}), flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                with lock:
                    reply = {"requests": sum(s.requests for s in network.servers),
                             "connections": connections[0], "times": list(times), "answered": list(answered)}
                    times[:], answered[:] = [], []
                print(json.dumps(reply), flush=True)
    finally:
        network.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
