"""The hub's exceptions.

    HubError
    ├── DbMissing        the database file is not there
    ├── DbUnreadable     zero bytes, not SQLite, truncated or malformed
    ├── DbBusy           another program kept the database locked through every retry
    ├── DbChanged        the file changed under a heal: settle again, never heal into it
    ├── DbReadOnly       the file or its folder cannot be written
    ├── Interrupted      the hub is stopping: its SQLite work was interrupted, rolled back
    ├── ExportRejected   a copy of an export failed verification: held back, not served
    └── StoreError       the snapshot store cannot take a copy (disk full, no permission)

Messages are written for a factory engineer: they name the file, index, table or
column and say what is wrong.
"""

from __future__ import annotations


class HubError(Exception):
    """Base of the hub's own errors."""


class DbMissing(HubError):
    pass


class DbUnreadable(HubError):
    pass


class DbBusy(HubError):
    pass


class DbChanged(HubError):
    pass


class Interrupted(HubError):
    """The hub is stopping: the SQLite work in hand was interrupted and rolled back."""


class DbReadOnly(HubError):
    """The file or its folder cannot be written (the journal needs the folder)."""


class ExportRejected(HubError):
    """An export's copy failed verification; ``forceable``: "publish anyway" may take it."""

    def __init__(self, reason: str, *, forceable: bool = False, rows: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.forceable = forceable
        self.rows = rows


class StoreError(HubError):
    """The snapshot store cannot take a copy: the last good snapshot stays served."""
