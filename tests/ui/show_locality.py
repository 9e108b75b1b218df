"""Open `mosaic demo` (in this process, as cmd_demo does) with the Locality view in front, for a screenshot:

    ../shared/tools/shoot /tmp/locality.png --wait 90 -- .venv/bin/python -m tests.ui.show_locality [METRIC]

Only for looking at the view: it changes nothing in the installed program.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    from app.cli import _demo_national_files, _start_demo_network
    from app.core.secrets import env_name
    from app.demo.oidc_provider import demo_browser
    from app.demo.policy import DEMO_STUDY, demo_policy
    from app.ui.app import build_window, ensure_application, settle_heap

    metric = sys.argv[1] if len(sys.argv) > 1 else "dna_rate"
    scroll = len(sys.argv) > 2 and sys.argv[2] == "bottom"  # the series and the funnel plot in view
    network = _start_demo_network(patients=600, latency_ms=0, load=None, practices=5)
    _demo_national_files()
    demo = demo_policy(network, "hub")
    os.environ[env_name(f"study-{DEMO_STUDY}")] = demo.study_key
    app = ensure_application()
    identity = network.identity.settings if network.identity is not None else None
    win, bridge = build_window(network.practices, identity=identity, open_url=demo_browser,
                               core_options={"notify": network.notify_settings(), "policy": demo.policy})

    def signed_in(_states: object) -> None:
        view = win.open_locality()
        if view is None:
            return
        view.resize(1420, 880)
        view.move(10, 10)

        def first(_answer: object) -> None:
            view.figures_shown.disconnect(first)
            view.controls.measure.setCurrentIndex(view.controls.measure.findData(metric))
            if scroll:
                view.figures_shown.connect(lambda _a: view.charts_area.verticalScrollBar().setValue(
                    view.charts_area.verticalScrollBar().maximum()))

        view.figures_shown.connect(first)

    win.sign_in_finished.connect(signed_in)
    settle_heap(win)
    win.show()
    try:
        return int(app.exec())
    finally:
        bridge.shutdown(win.core)
        network.stop()


if __name__ == "__main__":
    sys.exit(main())
