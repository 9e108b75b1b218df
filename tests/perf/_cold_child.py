"""Child of bench_cold_start: the real entry path (`mosaic --config FILE`), watched from outside.

Runs `app.cli.main(["--config", FILE])` unchanged. Before that it creates the QApplication the same
way the app does (app.ui.app.ensure_application, which run_window then reuses) and installs an
application event filter that only watches: when the main window gets its first Paint event it prints
`shown <time.time()>` once that paint has finished, then `signed_in <time> <online>/<total>` when the
window reports every practice settled, and quits the application as a user closing the window would.
"""

import time

STARTED = time.time()  # first statement after interpreter start-up and `site`

import os  # noqa: E402 - after the timestamp on purpose
import sys  # noqa: E402

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
SAFETY_S = 30


def main() -> int:
    config = sys.argv[1]
    print(f"started {STARTED:.6f}", flush=True)
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication

    from app.ui.app import ensure_application

    app = ensure_application()

    class Watch(QObject):
        seen = False

        def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt override
            if not self.seen and event.type() == QEvent.Type.Paint and hasattr(watched, "sign_in_finished"):
                self.seen = True
                watched.sign_in_finished.connect(self.signed_in)
                QTimer.singleShot(0, self.painted)  # runs once the paint in progress has finished
            return False

        def painted(self) -> None:
            print(f"shown {time.time():.6f}", flush=True)
            app.removeEventFilter(self)

        def signed_in(self, states) -> None:
            online = sum(1 for s in states if s.status == "online")
            print(f"signed_in {time.time():.6f} {online}/{len(states)}", flush=True)
            QTimer.singleShot(0, quit_now)

    def quit_now() -> None:
        print(f"quit {time.time():.6f}", flush=True)
        QApplication.quit()

    watch = Watch()
    app.installEventFilter(watch)
    QTimer.singleShot(SAFETY_S * 1000, quit_now)

    from app.core import paths
    from tests.machine import TEST_MACHINE_DIR_ENV

    if os.environ.get(TEST_MACHINE_DIR_ENV):  # the benchmark's empty machine folder, not this PC's /etc/mosaic
        from pathlib import Path

        paths.MACHINE_DIR = Path(os.environ[TEST_MACHINE_DIR_ENV])
    from app.cli import main as mosaic

    return mosaic(["--config", config])


if __name__ == "__main__":
    sys.exit(main())
