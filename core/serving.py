"""The one rule of what readers may be served, used by the API and the dashboard alike.

Readers are served the published snapshot and nothing else: not the ERP's file, not a
copy that is still being verified. While an export settles, or after one was held
back, the last published snapshot goes on being served; only before the first good
export has been published is there nothing to serve.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.queries import DataUnavailable
from core.store import Published, Store

NOTHING_YET = "no data published yet: the hub has not verified an export of the database"


@dataclass(frozen=True, slots=True)
class Serving:
    """The snapshot to read: its file and what it is."""

    published: Published
    path: Path

    @property
    def version(self) -> str:
        return self.published.version


def serving(store: Store, why_nothing: str | None = None) -> Serving:
    """The snapshot readers read now, or :class:`DataUnavailable` (503) when nothing has
    been published yet; ``why_nothing`` says why in words for a person."""
    published = store.current()
    if published is None:
        reason = NOTHING_YET + (f" ({why_nothing})" if why_nothing else "")
        raise DataUnavailable(reason, "missing")
    return Serving(published, store.path_of(published))
