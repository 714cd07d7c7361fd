"""What the database file looks like on disk: stats of the file and its sidecars, and
the DB version that every cache is keyed on.

The version is more than mtime: (device, inode, size, mtime_ns, SQLite header change
counter), plus the ``-wal`` sidecar when there is one, hashed to a short string. Copy
tools keep mtimes and renames keep sizes; the inode and the change counter catch them.
All functions here block (stat and a 100-byte read): call them off the event loop.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

SQLITE_MAGIC = b"SQLite format 3\x00"
SIDECAR_SUFFIXES = ("-journal", "-wal", "-shm")
HEADER_SIZE = 100


@dataclass(frozen=True, slots=True)
class FileStat:
    """One file's identity and size at a moment; ``exists`` False for an absent file."""

    exists: bool
    dev: int = 0
    ino: int = 0
    size: int = 0
    mtime_ns: int = 0

    @classmethod
    def of(cls, path: Path) -> FileStat:
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return cls(exists=False)
        return cls(True, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True, slots=True)
class SqliteHeader:
    """The fields of the 100-byte SQLite header the hub cares about."""

    valid: bool
    page_size: int = 0
    change_counter: int = 0
    page_count: int = 0
    version_valid_for: int = 0

    @classmethod
    def parse(cls, raw: bytes) -> SqliteHeader:
        if len(raw) < HEADER_SIZE or not raw.startswith(SQLITE_MAGIC):
            return cls(valid=False)
        page_size = int.from_bytes(raw[16:18], "big")
        if page_size == 1:  # the format's way to say 65536
            page_size = 65536
        return cls(
            valid=True,
            page_size=page_size,
            change_counter=int.from_bytes(raw[24:28], "big"),
            page_count=int.from_bytes(raw[28:32], "big"),
            version_valid_for=int.from_bytes(raw[92:96], "big"),
        )

    def expected_size(self) -> int | None:
        """The file size the header promises, when the header's page count is trustworthy."""
        if not self.valid or self.version_valid_for != self.change_counter:
            return None
        return self.page_size * self.page_count


def read_header(path: Path) -> SqliteHeader:
    try:
        with open(path, "rb") as fh:
            return SqliteHeader.parse(fh.read(HEADER_SIZE))
    except OSError:
        return SqliteHeader(valid=False)


@dataclass(frozen=True, slots=True)
class DbLook:
    """One look at the database: the file, its sidecars and its header.

    Two looks compare equal exactly when nothing observable changed between them;
    that is what settling counts.
    """

    path: Path
    main: FileStat
    journal: FileStat
    wal: FileStat
    shm: FileStat
    change_counter: int
    header_valid: bool
    expected_size: int | None = None  # what the header promises, when it can be trusted

    @property
    def exists(self) -> bool:
        return self.main.exists

    @property
    def truncated(self) -> bool:
        """The file is shorter than its own header says: an export that died midway."""
        return self.expected_size is not None and self.main.size < self.expected_size

    @property
    def writing(self) -> bool:
        """A rollback journal is present: a SQLite writer is in the middle of a transaction."""
        return self.journal.exists

    @property
    def version(self) -> str:
        """A short stable string naming this content of the file; '' when it is missing."""
        if not self.main.exists:
            return ""
        m = self.main
        parts = [m.dev, m.ino, m.size, m.mtime_ns, self.change_counter]
        # Committed pages may live in the WAL, not the main file. An empty -wal is what a
        # read-only connection leaves behind: no content, so not part of the version.
        if self.wal.exists and self.wal.size > 0:
            parts += [self.wal.size, self.wal.mtime_ns]
        digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).hexdigest()
        return digest

    def same_content(self, other: DbLook | None) -> bool:
        return other is not None and self.version == other.version


class _HeaderMemo:
    """The last header read per file, with the stat it was read at.

    On Windows any open handle on the ERP's file, however brief, makes the ERP's
    rename-over export fail at that moment ("access denied": a file that is open cannot
    be replaced, whatever its share mode). So there a look opens the file only once its
    stat (file id, size, mtime) has held still for one look: while the file keeps
    changing the last header read is reported with the new stat (the version changes
    anyway), and an idle hub's periodic looks never touch it. Elsewhere opening costs
    the ERP nothing and every look reads the header (which also catches a copy that
    keeps size and mtime).
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._last: dict[Path, tuple[FileStat, SqliteHeader]] = {}
        self._seen: dict[Path, FileStat] = {}  # the stat of the previous look

    def header(self, path: Path, main: FileStat, writing: bool) -> SqliteHeader:
        if not (main.exists and main.size):
            self._last.pop(path, None)
            self._seen.pop(path, None)
            return SqliteHeader(valid=False)
        previous, self._seen[path] = self._seen.get(path), main
        if self.enabled and not writing:
            last = self._last.get(path)
            if last is not None and (last[0] == main or previous != main):
                return last[1]  # unchanged, or changing right now: do not open it
        header = read_header(path)
        self._last[path] = (main, header)
        return header


HEADERS = _HeaderMemo(enabled=sys.platform == "win32")


def look(path: Path) -> DbLook:
    """Stat the database and its sidecars and read its change counter (blocking)."""
    main = FileStat.of(path)
    journal = FileStat.of(sidecar(path, "-journal"))
    header = HEADERS.header(path, main, writing=journal.exists)
    return DbLook(
        path=path,
        main=main,
        journal=journal,
        wal=FileStat.of(sidecar(path, "-wal")),
        # Readers of a WAL database touch -shm; only its presence says anything.
        shm=FileStat(exists=sidecar(path, "-shm").exists()),
        change_counter=header.change_counter,
        header_valid=header.valid,
        expected_size=header.expected_size(),
    )


def sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def watched_names(path: Path) -> frozenset[str]:
    """File names in the database's folder whose changes matter."""
    return frozenset({path.name, *(path.name + s for s in SIDECAR_SUFFIXES)})
