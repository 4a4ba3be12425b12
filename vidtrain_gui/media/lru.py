"""A least-recently-used cache of decoded frames bounded in bytes, shared by the reader and the frame server."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator

import numpy as np


class FrameLRU:
    """Arrays by key, at most ``limit_bytes`` of them; the least recently used go first. Not thread-safe: each
    owner uses its own from one thread."""

    def __init__(self, limit_bytes: int):
        self.limit_bytes = int(limit_bytes)
        self.used_bytes = 0
        self._items: OrderedDict[Hashable, np.ndarray] = OrderedDict()

    def get(self, key: Hashable) -> np.ndarray | None:
        arr = self._items.get(key)
        if arr is not None:
            self._items.move_to_end(key)
        return arr

    def put(self, key: Hashable, arr: np.ndarray) -> None:
        """Keep ``arr`` (an array larger than the whole cache, or a key already held, is left as it is)."""
        if key in self._items or arr.nbytes > self.limit_bytes:
            return
        self._items[key] = arr
        self.used_bytes += arr.nbytes
        while self.used_bytes > self.limit_bytes:
            _, old = self._items.popitem(last=False)
            self.used_bytes -= old.nbytes

    def clear(self) -> None:
        self._items.clear()
        self.used_bytes = 0

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def items(self) -> Iterator[tuple[Hashable, np.ndarray]]:
        return iter(list(self._items.items()))


__all__ = ["FrameLRU"]
