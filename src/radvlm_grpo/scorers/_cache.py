"""A bounded least-recently-used cache for per-report features (reference encodings reused across GRPO steps)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any


class LRUCache:
    """``maxsize`` entries at most; reading or writing an entry makes it the most recent. ``maxsize <= 0`` disables."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = int(maxsize)
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def clear(self) -> None:
        self._data.clear()

    def get_many(self, keys: Sequence[Hashable]) -> dict:
        """The cached values among ``keys`` (hits and misses are counted)."""
        found = {}
        for key in keys:
            if key in self._data:
                self._data.move_to_end(key)
                found[key] = self._data[key]
                self.hits += 1
            else:
                self.misses += 1
        return found

    def put_many(self, items: dict) -> None:
        if self.maxsize <= 0:
            return
        for key, value in items.items():
            self._data[key] = value
            self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)


def encode_with_cache(
    refs: Sequence[str], hyps: Sequence[str], cache: LRUCache, encode: Callable[[list[str]], list]
) -> dict[str, Any]:
    """Features of every distinct text in ``refs`` and ``hyps``, encoding in one call only what the cache lacks.

    References are remembered (they recur: G completions per prompt in a step, and the same prompt in later epochs);
    hypotheses are not, so that one step's completions do not push the references out.
    """
    unique_refs = list(dict.fromkeys(refs))
    wanted = list(dict.fromkeys([*unique_refs, *hyps]))
    known = cache.get_many(wanted)
    missing = [t for t in wanted if t not in known]
    if missing:
        known.update(zip(missing, encode(missing)))
    cache.put_many({r: known[r] for r in unique_refs})
    return known
