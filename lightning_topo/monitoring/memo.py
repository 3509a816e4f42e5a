"""Betti numbers already computed, found again by the content of their neighbour lists: a cloud that did not change
since an earlier measurement (the probe's own input layer, a frozen layer) costs a hash instead of a homology.

The numbers are a function of the lists and the options alone, so a hit is exact.  The memo lives in the process
that runs the Betti jobs (threads of the training process, or each worker process), holds a bounded number of
entries, oldest dropped first, and imports no torch.

Example:
    >>> import numpy as np
    >>> from lightning_topo.topology import NeighbourLists
    >>> memo = BettiMemo(size=8)
    >>> lists = NeighbourLists(3, 3, "knn", np.array([[0, 1], [1, 0], [2, 1]]), None)
    >>> key = memo.key(lists, max_dim=1, scale=2.5)
    >>> memo.get(key) is None
    True
    >>> memo.put(key, [1, 0])
    >>> memo.get(key)
    [1, 0]
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

__all__ = ["BETTI_MEMO", "BettiMemo"]


class BettiMemo:
    """A bounded, thread-safe map from (lists' content, options) to Betti numbers."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._entries: OrderedDict[bytes, list[int]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(lists: Any, **options: Any) -> bytes:
        """A digest of everything the Betti numbers depend on: the lists' arrays and sizes, and the options."""
        digest = hashlib.blake2b(digest_size=20)
        digest.update(repr((lists.n_unique, lists.metric, sorted(options.items()))).encode())
        for array in (lists.indices, lists.edges):
            if array is None:
                digest.update(b"-")
            else:
                digest.update(repr((array.dtype.str, array.shape)).encode())
                digest.update(memoryview(array).cast("B") if array.flags.c_contiguous else array.tobytes())
        return digest.digest()

    def get(self, key: bytes) -> list[int] | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return None if found is None else list(found)

    def put(self, key: bytes, betti: list[int]) -> None:
        with self._lock:
            self._entries[key] = list(betti)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


#: the memo of this process's Betti jobs
BETTI_MEMO = BettiMemo()
