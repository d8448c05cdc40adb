"""Length-sorted padded batches of token ids, shared by the scorers that run one sequence per report."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

# What one more forward pass costs, in padded token positions: a batch is split only where that saves more padding.
BATCH_COST_TOKENS = 64


def batch_bounds(
    lengths: Sequence[int], batch_size: int, batch_cost: int = BATCH_COST_TOKENS
) -> list[tuple[int, int]]:
    """Cut ``lengths`` (sorted longest first) into consecutive batches of at most ``batch_size`` rows, each padded to
    its first row, so that padded positions plus ``batch_cost`` per batch are fewest (dynamic programming; ties go to
    fewer batches, then to full batches first)."""
    n, size = len(lengths), max(1, int(batch_size))
    cost = [0] + [float("inf")] * n  # cost[j]: best for the last j rows (rows n - j .. n - 1)
    take = [0] * (n + 1)
    for j in range(1, n + 1):
        start = n - j
        for rows in range(min(size, j), 0, -1):  # the batch starting at `start` takes `rows` rows
            candidate = cost[j - rows] + lengths[start] * rows + batch_cost
            if candidate < cost[j]:
                cost[j], take[j] = candidate, rows
    bounds, start = [], 0
    while start < n:
        rows = take[n - start]
        bounds.append((start, start + rows))
        start += rows
    return bounds


def padded_batches(
    ids: Sequence[Sequence[int]], batch_size: int, pad_id: int
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """``(rows, input_ids, attention_mask)`` for ``ids`` taken longest first, at most ``batch_size`` rows at a time,
    each batch padded to its longest row: sorting keeps padding (wasted encoder work) small, and batches are cut where
    lengths drop (``batch_bounds``). The tensors are on the CPU, filled in numpy and converted once per batch."""
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    for start, end in batch_bounds([len(ids[i]) for i in order], batch_size):
        rows = order[start:end]
        width = max(len(ids[i]) for i in rows)
        input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for row, i in enumerate(rows):
            input_ids[row, : len(ids[i])] = ids[i]
            mask[row, : len(ids[i])] = 1
        yield rows, torch.from_numpy(input_ids), torch.from_numpy(mask)
