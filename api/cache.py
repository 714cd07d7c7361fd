"""The API's response cache: encoded bodies keyed by (DB version, query), bounded, LRU.

Every key carries the DB version, so an entry can never answer for another version.
When a new version is seen the whole store is dropped at once (memory goes back right
away, nothing stale lingers). A snapshot about to be published can be warmed first
(:meth:`VersionedCache.begin`): its answers wait aside and become the store when that
version is observed. Safe to use from the worker threads that run queries.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

DEFAULT_MAX_ENTRIES = 512
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class VersionedCache:
    """An LRU of response bodies for one DB version at a time."""

    def __init__(
        self, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._version = ""
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._bytes = 0
        self._next_version = ""  # being warmed, not served yet
        self._next: OrderedDict[Hashable, bytes] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.invalidations = 0

    @property
    def version(self) -> str:
        return self._version

    def __len__(self) -> int:
        return len(self._entries)

    def observe(self, version: str) -> None:
        """A look saw ``version``: if it is new, drop everything cached for the old one."""
        if version == self._version:
            return
        with self._lock:
            if version != self._version:
                self._version = version
                if version == self._next_version:
                    self._entries, self._next = self._next, OrderedDict()
                else:
                    self._entries = OrderedDict()
                self._bytes = sum(len(b) for b in self._entries.values())
                self._next_version = ""
                self.invalidations += 1

    def begin(self, version: str) -> None:
        """Accept answers for ``version`` (a snapshot being warmed) before it is served."""
        with self._lock:
            if version not in (self._version, self._next_version):
                self._next_version = version
                self._next = OrderedDict()

    def get(self, version: str, key: Hashable) -> bytes | None:
        with self._lock:
            if version != self._version:
                self.misses += 1
                return None
            body = self._entries.get(key)
            if body is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return body

    def put(self, version: str, key: Hashable, body: bytes) -> None:
        """Store ``body``; ignored if ``version`` is no longer the current one or too big."""
        size = len(body)
        if size > self.max_bytes // 4:
            return  # one huge answer must not evict everything else
        with self._lock:
            if version == self._next_version and version:
                if len(self._next) < self.max_entries:
                    self._next[key] = body
                return
            if version != self._version:
                return
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._entries[key] = body
            self._bytes += size
            while self._entries and (
                len(self._entries) > self.max_entries or self._bytes > self.max_bytes
            ):
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._entries = OrderedDict()
            self._bytes = 0
