"""Rendered /search answers of one process, each tagged with the data version it was read at.

Used only from the event loop's thread, so it needs no lock. An entry serves only while the data
version is the one it was read at, so a fetch that changes anything retires every entry at once.
"""

from collections import OrderedDict
from dataclasses import dataclass

from core.store.reader import SearchKey


@dataclass(frozen=True, slots=True)
class Entry:
    version: int
    body: bytes
    etag: str


class ResponseCache:
    """Least recently used first out, bounded in entries and in bytes; an answer larger than a
    sixteenth of the byte budget is never kept (it would evict most of the others)."""

    def __init__(self, *, max_entries: int, max_bytes: int) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self.max_entry_bytes = max_bytes // 16
        self._entries: OrderedDict[SearchKey, Entry] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: SearchKey, version: int) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.version != version:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: SearchKey, entry: Entry) -> None:
        size = len(entry.body)
        if not self.max_entries or size > self.max_entry_bytes:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = entry
        self.bytes += size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: SearchKey) -> None:
        self.bytes -= len(self._entries.pop(key).body)
