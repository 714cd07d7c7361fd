"""The dashboard process prepares its default view itself: at start, and whenever the
hub publishes a new snapshot.

Without it the first visitor after a publish (the morning meeting, right after the
night's export) pays for every query of the default view, and the first visitor after
the process started pays for importing pandas, Altair and the page too. A
:class:`Warmer` thread, started by :mod:`dashboard.serve` before Streamlit's server:

1. waits until Streamlit's runtime exists (values cached before it would land in a
   throw-away cache; and no import runs beside the main thread's import of Streamlit);
2. imports the page's modules (what the first script run would otherwise import);
3. looks at the store's pointer every ``interval`` seconds (one ``stat``, see
   :meth:`core.store.Store.current`) and, for each new published version, reads and
   prepares the default view (:func:`dashboard.prepared.warm_default`) into the same
   ``st.cache_data`` caches the page uses.

The thread is stopped by :meth:`Warmer.stop` (``atexit`` in the dashboard process); a
stop waits at most for the query running at that moment. A snapshot that cannot be read
is logged and tried again at the next look; the page shows the reason itself.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable

from core.config import Config

log = logging.getLogger(__name__)

THREAD_NAME = "pdh-dashboard-warm"
DEFAULT_INTERVAL_S = 0.5


def runtime_ready() -> bool:
    """Streamlit's runtime exists, so its caches are the ones sessions will read."""
    # No import from this thread while the main one is still importing Streamlit: under
    # Wine two threads importing it at once hung the dashboard's start (never healthy).
    # (The module may still be importing: its ``Runtime`` comes once it is defined.)
    runtime_class = getattr(sys.modules.get("streamlit.runtime"), "Runtime", None)
    return runtime_class is not None and bool(runtime_class.exists())


class _QuietThread(logging.Filter):
    """Streamlit warns of a "missing ScriptRunContext" when a cache is used outside a
    script run: expected for this thread, and only for it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != THREAD_NAME


class Warmer:
    """Warms the default view for each newly published snapshot, in a thread it owns."""

    def __init__(self, config: Config, interval: float = DEFAULT_INTERVAL_S,
                 ready: Callable[[], bool] = runtime_ready) -> None:
        self.config = config
        self.interval = interval
        self._ready = ready
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.warmed = ""  # the last version whose default view is ready
        self.seconds = 0.0  # how long that took
        self.failures = 0

    def start(self) -> Warmer:
        for name in ("streamlit.runtime.scriptrunner_utils.script_run_context",
                     "streamlit.runtime.caching.cache_data_api"):
            logging.getLogger(name).addFilter(_QuietThread())
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask the thread to end and wait up to ``timeout``; True when it has ended."""
        self._stop.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def wait_warmed(self, version: str, timeout: float) -> bool:
        """Until ``version`` is warm (for tests and the benchmark's own checks)."""
        deadline = time.monotonic() + timeout
        while self.warmed != version:
            if time.monotonic() > deadline or self._stop.is_set():
                return False
            time.sleep(0.02)
        return True

    def _run(self) -> None:
        while not self._ready():  # Streamlit imported and serving: imports are safe now
            if self._stop.wait(0.05):
                return
        try:
            import dashboard.page  # noqa: F401 - the first script run finds it imported
            from dashboard import data
        except Exception:  # noqa: BLE001 - the page itself will show what is wrong
            log.exception("dashboard warm-up: cannot import the page")
            return
        tried = ""
        while not self._stop.is_set():
            try:
                version = data.published_version(self.config)
            except Exception:  # noqa: BLE001 - a broken store is the page's to show
                log.exception("dashboard warm-up: cannot read the store's pointer")
                version = ""
            if version and version != tried and self._warm(version):
                tried = version
            self._stop.wait(self.interval)

    def _warm(self, version: str) -> bool:
        """Warm ``version``; False when it should be tried again at the next look."""
        from core.queries import DataUnavailable
        from dashboard import data, prepared

        started = time.perf_counter()
        source = data.assess(self.config, None)
        if source.version != version or source.path is None:
            return False  # published again meanwhile: the next look takes the newer one
        try:
            prepared.warm_default(source)
        except DataUnavailable as exc:
            self.failures += 1
            log.warning("dashboard warm-up of %s: %s", version, exc.reason)
            return False
        except Exception:  # noqa: BLE001 - never take the dashboard down; say why
            self.failures += 1
            log.exception("dashboard warm-up of %s failed", version)
            return True  # the same error again at every look would only fill the log
        self.seconds = time.perf_counter() - started
        self.warmed = version
        with contextlib.suppress(OSError, ValueError):  # a starter gone: nobody reads it
            print(f"dashboard: default view of snapshot {version} ready in "
                  f"{self.seconds:.2f} s", flush=True)
        return True
