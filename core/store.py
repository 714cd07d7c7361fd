"""The snapshot store: the copies of the ERP's exports that readers are served from.

Layout of ``[store] dir``::

    source.json           whose store this is: the database it serves (one per store)
    current.json          the pointer: which snapshot readers read (written atomically)
    held.json             the export held back by verification, if any
    snap-<time>-<v>.db    published snapshots, never changed after publishing
    held/                 the held-back copy, kept for inspection (one at a time)
    incoming/             copies being made; removed at start-up when left by a crash

A store serves one database. Its writer claims it (``source.json``) before the first copy
and refuses a store claimed by another database, naming both; a reader given a store of
another database serves nothing from it rather than another file's data.

Publishing is one ``os.replace`` of ``current.json``: a reader sees the old snapshot or
the new one, never a mix. The dashboard child and a restarted hub read the same pointer.
Old snapshots beyond ``keep`` are deleted; on Windows a file a reader still has open
cannot be deleted, so that is retried at the next publish, never an error.

Every function here blocks (file I/O): the hub calls them through ``anyio.to_thread``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel, ValidationError

from core.errors import StoreError
from core.paths import absolute, database_key

if TYPE_CHECKING:
    from core.config import Config

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

POINTER = "current.json"
SOURCE = "source.json"
HELD = "held.json"
SNAPSHOT_GLOB = "snap-*.db"
# Room a copy needs beyond the source's size: the index spec (when the ERP's file lacks
# it) and ANALYZE.
HEADROOM = 0.35
MIN_HEADROOM_BYTES = 16 * 1024 * 1024


class Published(BaseModel):
    """The snapshot readers are served from."""

    version: str  # the snapshot's own version: X-DB-Version, every cache key
    source_version: str  # the version of the ERP's file it was copied from
    as_of: datetime  # when the ERP wrote that export (the file's mtime): X-Data-As-Of
    published_at: datetime
    rows: int  # production_records
    file: str  # the snapshot's file name in the store
    newest_work_date: date | None = None  # the newest production date in it
    forced: bool = False  # published by "publish anyway" despite failing verification


class HeldBack(BaseModel):
    """An export that failed verification; readers keep the last good snapshot."""

    at: datetime
    reason: str
    version: str  # the version of the ERP's file that was rejected
    as_of: datetime | None = None
    rows: int | None = None
    file: str | None = None  # its copy under held/, when one could be made
    forceable: bool = False  # "publish anyway" can publish it (a row-count drop, ...)


class StoreSource(BaseModel):
    """Whose store it is: the database its snapshots are copies of."""

    database: str  # the database file as its hub names it (absolute)
    key: str  # core.paths.database_key of that file: what is compared
    since: datetime


class ForeignStore(StoreError):
    """The store belongs to another database."""


def write_atomically(path: Path, data: str) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, replace)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_model(path: Path, model: type[M]) -> M | None:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None
    try:
        return model.model_validate(json.loads(raw))
    except (json.JSONDecodeError, ValidationError) as exc:
        log.warning("%s is damaged (%s); ignoring it", path, exc)
        return None


def snapshot_name(version: str, moment: datetime) -> str:
    stamp = moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"snap-{stamp}-{version}.db"


def store_of(config: Config) -> Store:
    """The store of ``config``'s database (its own folder unless ``[store] dir`` is set)."""
    return Store(config.store_dir, config.store.keep, database=config.db_path)


class Store:
    """One hub's snapshot store. Only the hub (one writer) publishes; anyone may read."""

    def __init__(self, root: Path, keep: int = 2, *, database: Path | None = None) -> None:
        self.root = root
        self.keep = keep
        # The database this store serves (None: whoever's it is, for tools that only look).
        self.database = absolute(database) if database is not None else None
        self._key = database_key(database) if database is not None else None
        self._cached: tuple[tuple[int, int, int], Published | None] | None = None

    @property
    def pointer(self) -> Path:
        return self.root / POINTER

    @property
    def incoming(self) -> Path:
        return self.root / "incoming"

    @property
    def held_dir(self) -> Path:
        return self.root / "held"

    def path_of(self, published: Published) -> Path:
        return self.root / published.file

    # reading (any process) -----------------------------------------------------------

    def current(self) -> Published | None:
        """The published snapshot per the pointer file; cached until the pointer changes
        (one stat a call), so readers can ask on every request."""
        try:
            st = self.pointer.stat()
        except OSError:
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)  # os.replace gives a new inode
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        published = _read_model(self.pointer, Published)
        if published is not None and not self.path_of(published).is_file():
            log.warning("store %s points at %s, which is gone", self.root, published.file)
            published = None
        if published is not None and (foreign := self.foreign()) is not None:
            log.error("%s; serving nothing from it", foreign)
            published = None
        self._cached = (key, published)
        return published

    def source(self) -> StoreSource | None:
        """Whose store this is, per ``source.json`` (None: not claimed yet)."""
        return _read_model(self.root / SOURCE, StoreSource)

    def foreign(self) -> str | None:
        """Why this store is not this database's (None: it is, or it is unclaimed)."""
        source = self.source()
        if self._key is None or source is None or source.key == self._key:
            return None
        return (f"the snapshot store {self.root} belongs to {source.database}, not to "
                f"{self.database}: give each database its own [store] dir, or leave "
                "[store] dir out (each database then gets a folder of its own)")

    def held_back(self) -> HeldBack | None:
        return _read_model(self.root / HELD, HeldBack)

    # writing (the hub) ---------------------------------------------------------------

    def prepare(self) -> None:
        """Create the folders, claim the store for this database (:class:`ForeignStore`
        if another's claimed it) and clear copies a crash left in ``incoming/``."""
        try:
            self.incoming.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the snapshot store {self.root}: "
                             f"{exc.strerror or exc}") from None
        self.claim()
        for leftover in self.incoming.iterdir():
            with contextlib.suppress(OSError):
                leftover.unlink()

    def claim(self) -> None:
        """Record this store's database in ``source.json`` (once); refuse another's."""
        if self._key is None or self.database is None:
            return
        foreign = self.foreign()
        if foreign is not None:
            raise ForeignStore(foreign)
        if (self.root / SOURCE).is_file():
            return
        mine = StoreSource(database=str(self.database), key=self._key, since=datetime.now(UTC))
        try:
            write_atomically(self.root / SOURCE, mine.model_dump_json(indent=2))
        except OSError as exc:
            raise StoreError(f"cannot write {self.root / SOURCE}: {exc.strerror or exc}"
                             ) from None

    def new_copy_path(self, moment: datetime) -> Path:
        """A fresh path in ``incoming/`` for the next copy."""
        self.prepare()
        stamp = moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%f")
        return self.incoming / f"copy-{stamp}.db"

    def check_space(self, source_size: int) -> None:
        """Raise :class:`StoreError` unless the store's disk has room for one more copy."""
        self.prepare()
        needed = source_size + max(int(source_size * HEADROOM), MIN_HEADROOM_BYTES)
        free = shutil.disk_usage(self.root).free
        if free < needed:
            raise StoreError(
                f"not enough free space for a snapshot in {self.root}: {needed:,} bytes "
                f"needed ({source_size:,} for the copy plus room for indexes), "
                f"{free:,} free"
            )

    def place(self, copy: Path, published: Published) -> Path:
        """Move ``copy`` to its name in the store, ``published.file``, before anyone reads
        it: nothing points there yet. (On Windows an open file cannot be renamed, so it
        gets its final name before the cache is warmed on it.)"""
        target = self.path_of(published)
        os.replace(copy, target)
        return target

    def point(self, published: Published) -> None:
        """Switch the pointer to the placed ``published``: the one moment readers move."""
        write_atomically(self.pointer, published.model_dump_json(indent=2))
        self._cached = None
        self.prune(published)

    def publish(self, copy: Path, published: Published) -> None:
        """:meth:`place` then :meth:`point`."""
        self.place(copy, published)
        self.point(published)

    def hold(self, copy: Path | None, held: HeldBack) -> HeldBack:
        """Keep a rejected export (its copy, if any, under ``held/``) for inspection or
        "publish anyway"; only the newest held-back export is kept."""
        self.held_dir.mkdir(parents=True, exist_ok=True)
        for old in self.held_dir.glob("*.db"):
            with contextlib.suppress(OSError):
                old.unlink()
        if copy is not None and copy.exists():
            name = f"held-{held.version or 'unknown'}.db"
            os.replace(copy, self.held_dir / name)
            held = held.model_copy(update={"file": f"held/{name}"})
        else:
            held = held.model_copy(update={"file": None, "forceable": False})
        write_atomically(self.root / HELD, held.model_dump_json(indent=2))
        return held

    def take_held(self, held: HeldBack) -> Path | None:
        """Move the held-back copy back to ``incoming/`` (to publish it anyway)."""
        if held.file is None:
            return None
        source = self.root / held.file
        if not source.is_file():
            return None
        target = self.new_copy_path(datetime.now(UTC))
        os.replace(source, target)
        return target

    def clear_held(self) -> None:
        (self.root / HELD).unlink(missing_ok=True)
        if self.held_dir.is_dir():
            for old in self.held_dir.glob("*.db"):
                with contextlib.suppress(OSError):
                    old.unlink()

    def prune(self, current: Published | None = None) -> list[str]:
        """Delete published snapshots beyond the newest ``keep`` (the current one is always
        kept). A file another process still has open (Windows) stays until next time."""
        current = current or self.current()
        files = sorted(self.root.glob(SNAPSHOT_GLOB), key=lambda p: p.name, reverse=True)
        keep = {p.name for p in files[: self.keep]}
        if current is not None:
            keep.add(current.file)
        removed: list[str] = []
        for path in files:
            if path.name in keep:
                continue
            try:
                path.unlink()
            except PermissionError as exc:  # Windows: a reader still has it open
                log.info("old snapshot %s still in use (%s); deleting it later", path.name, exc)
            except OSError as exc:
                log.warning("cannot delete old snapshot %s: %s", path.name, exc)
            else:
                removed.append(path.name)
        return removed

    def snapshots(self) -> list[str]:
        return sorted(p.name for p in self.root.glob(SNAPSHOT_GLOB))
