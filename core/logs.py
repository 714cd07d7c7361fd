"""Human logging: console plus a rotating file ``pdh.log`` in the log dir."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
LOG_FILENAME = "pdh.log"
_HANDLER_TAG = "_pdh_handler"


def setup_logging(
    log_dir: Path | None, level: str = "INFO", *, console: bool = True
) -> Path | None:
    """Configure the root logger once (idempotent). Returns the log file, if any.

    A log dir that cannot be created is reported on the console and the hub goes on
    with console logging only: a read-only disk must not stop it healing.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_TAG, False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    formatter = logging.Formatter(LOG_FORMAT)
    if console and sys.stderr is not None:  # None under pythonw (Windows, no console)
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(formatter)
        setattr(stream, _HANDLER_TAG, True)
        root.addHandler(stream)
    log_file: Path | None = None
    if log_dir is not None:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            log_file = log_dir / LOG_FILENAME
            rotating = logging.handlers.RotatingFileHandler(
                log_file, maxBytes=2_000_000, backupCount=5, encoding="utf-8"
            )
        except OSError as exc:
            logging.getLogger(__name__).warning("cannot log to %s: %s", log_dir, exc)
            log_file = None
        else:
            rotating.setFormatter(formatter)
            setattr(rotating, _HANDLER_TAG, True)
            root.addHandler(rotating)
    # Third-party chatter that would drown the few lines a factory engineer reads.
    for noisy in ("watchfiles", "httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return log_file
