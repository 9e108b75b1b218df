"""Background threads a step below the GUI thread in the operating system's scheduler.

Why. On a two-core practice PC the window's GUI thread shares the CPUs with Mosaic's own background threads (the
core's asyncio loop: HTTP, token renewal, the audit outbox; the workers that write the journal) and with every
other program. A trace of the soak's longest stalls (`perf record -e sched:sched_switch`, issue 9) found the GUI
thread runnable but waiting for a CPU for a third of a stall, while the core's loop thread held one. The
scheduler cannot know which thread the user is waiting for: these threads tell it. Their work is not delayed when
a CPU is free; when both want one, the window goes first. (The interpreter lock is a separate matter: the core's
loop already stands aside while the GUI thread works, app/ui/gui_first.py.)

How, per platform: Linux gives each thread its own nice value (`setpriority` on the thread's id) and a thread
may always lower its own; Windows has SetThreadPriority(BELOW_NORMAL). Elsewhere (macOS) nothing is changed.
Best effort: a refusal is logged at debug level and the thread runs as it was.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger("mosaic.core.thread_priority")

BACKGROUND_NICE_STEP = 5  # Linux: a nice-5 thread gets about a third of a nice-0 thread's share when both run
_THREAD_PRIORITY_BELOW_NORMAL = -1  # Windows, winbase.h


def lower_this_thread() -> bool:
    """Put the calling thread (not the main thread) below the main thread's priority. True when the platform did it."""
    try:
        if sys.platform.startswith("linux"):
            # relative to the main (GUI) thread's, whose id is the process's: the same level however many times
            # it is asked, and a thread started by a lowered one (which inherits its value) is not lowered twice
            target = min(19, os.getpriority(os.PRIO_PROCESS, os.getpid()) + BACKGROUND_NICE_STEP)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), target)
            return True
        if sys.platform == "win32":
            import ctypes

            kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined,unused-ignore]
            return bool(kernel32.SetThreadPriority(kernel32.GetCurrentThread(), _THREAD_PRIORITY_BELOW_NORMAL))
    except (OSError, AttributeError) as exc:
        log.debug("thread priority left as it was: %s", exc)
    return False
