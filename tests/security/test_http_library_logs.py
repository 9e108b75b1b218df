"""The HTTP library's own log lines (every request's full URL at INFO, query string included) never reach
Mosaic's log, from the first request of the process: the sign-in runs before any adapter is imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app.core import logs

SCRIPT = """
import asyncio, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Ok(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"{}")
    def log_message(self, *a):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
threading.Thread(target=server.serve_forever, daemon=True).start()
from app.core.logs import setup_logging
setup_logging()
from app.core import net  # as the sign-in does, before adapters/http.py is ever imported
assert "adapters.http" not in sys.modules

async def ask():
    async with net.async_client() as client:
        await client.get(f"http://127.0.0.1:{server.server_address[1]}/userinfo?nhs_number=9434765919&code=SECRET")

asyncio.run(ask())
import logging
logging.shutdown()
print("asked")
"""


def test_the_http_librarys_request_lines_stay_out_of_the_log(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = subprocess.run([sys.executable, "-c", SCRIPT], env={"MOSAIC_HOME": str(home), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0 and "asked" in done.stdout, done.stderr
    log = "\n".join(p.read_text() for p in (home / "logs").glob("*.log*"))
    assert "9434765919" not in log and "SECRET" not in log, log
    assert set(logs.HTTP_LOGGERS) >= {"httpx2", "httpcore2"}
