"""The upgrade from the flat default folders of earlier releases to one set per database.

Before, every database's hub used one default store (``.../snapshots``), one
``state.json`` and one ``events.jsonl``, so two hubs on one PC mixed their data. Now each
database has folders of its own (:attr:`core.config.Config.store_dir` and friends). The
first hub whose database is the one the old files belong to takes them over (moved, so
what was served stays served across the upgrade); any other hub leaves them alone and
says once where they are and that they can be deleted.

Whose the old files are: the old store's snapshot, or the old state file, names the
database file's version (its device, inode, size, time and change counter, so no other
file has it), or an old lock file shows this configuration ran that database.
Called by the holder of the database's lock only (one hub), before the hub reads its
state. Blocking (file I/O).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from core.config import Config, legacy_dirs
from core.dbfile import look
from core.paths import absolute
from core.state import load_state
from core.store import POINTER, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Legacy:
    """The flat default folders of earlier releases."""

    store: Path
    state: Path
    logs: Path

    @classmethod
    def default(cls) -> Legacy:
        return cls(*legacy_dirs())

    @property
    def state_file(self) -> Path:
        return self.state / "state.json"

    @property
    def events_file(self) -> Path:
        return self.logs / "events.jsonl"

    def lock_file(self, config_source: Path | None, db_path: Path) -> Path:
        """The lock file an earlier release's hub of this configuration left behind."""
        parts = [str(absolute(config_source)) if config_source else "<defaults>",
                 str(absolute(db_path))]
        if sys.platform == "win32":
            parts = [p.lower() for p in parts]
        key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
        return self.state / f"agent-{key}.lock"


def adopt_legacy(config: Config, config_source: Path | None = None,
                 legacy: Legacy | None = None) -> bool:
    """Move the old flat store, state and event log to ``config``'s own folders when they
    are this database's; True if they were. Folders the config sets explicitly are never
    touched, nor is anything when the database's own store already exists."""
    legacy = legacy or Legacy.default()
    if config.store.dir is not None or not (legacy.store / POINTER).is_file():
        return False
    if (config.store_dir / POINTER).exists():
        return False  # adopted before, or this database has published since
    if not _belongs(config, config_source, legacy):
        log.info("an old snapshot store from before per-database folders is at %s; it is "
                 "not this database's (%s), so this hub leaves it alone: once no hub of an "
                 "earlier release runs, it can be deleted", legacy.store, config.db_path)
        return False
    moves = [(legacy.store, config.store_dir)]
    if config.state.dir is None:
        moves.append((legacy.state_file, config.state_file))
    if config.log.dir is None:
        moves.append((legacy.events_file, config.events_file))
    for source, target in moves:
        if not source.exists() or target.exists():
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
        except OSError as exc:  # a reader still has a snapshot open (Windows), ...
            log.warning("cannot move %s to %s (%s); starting with a new one", source, target,
                        exc.strerror or exc)
            if source == legacy.store:
                return False
        else:
            log.info("moved %s to this database's own folder: %s", source, target)
    return True


def _belongs(config: Config, config_source: Path | None, legacy: Legacy) -> bool:
    try:
        version = look(config.db_path).version
    except OSError:
        version = ""
    published = Store(legacy.store).current()
    named = {load_state(legacy.state_file).known_version,
             published.source_version if published else ""} - {""}
    if version and version in named:
        return True
    return legacy.lock_file(config_source, config.db_path).exists()
