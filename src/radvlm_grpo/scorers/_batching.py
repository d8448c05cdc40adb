"""Length-sorted padded batches of token ids, shared by the scorers that run one sequence per report."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch


def padded_batches(
    ids: Sequence[Sequence[int]], batch_size: int, pad_id: int
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """``(rows, input_ids, attention_mask)`` for ``ids`` taken longest first, ``batch_size`` rows at a time, each
    batch padded to its longest row: sorting keeps padding (wasted encoder work) small. The tensors are on the CPU,
    filled in numpy and converted once per batch."""
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    size = max(1, int(batch_size))
    for start in range(0, len(order), size):
        rows = order[start : start + size]
        width = max(len(ids[i]) for i in rows)
        input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for row, i in enumerate(rows):
            input_ids[row, : len(ids[i])] = ids[i]
            mask[row, : len(ids[i])] = 1
        yield rows, torch.from_numpy(input_ids), torch.from_numpy(mask)
