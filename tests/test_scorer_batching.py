"""Padded batches shared by the BERTScore and CheXbert scorers."""

import pytest

from radvlm_grpo.scorers._batching import padded_batches


def test_rows_come_longest_first_padded_and_masked():
    ids = [[5], [1, 2, 3], [], [7, 8], [9, 9, 9, 9]]
    batches = list(padded_batches(ids, batch_size=2, pad_id=0))
    assert [rows for rows, _, _ in batches] == [[4, 1], [3, 0], [2]]
    rows, input_ids, mask = batches[0]
    assert input_ids.tolist() == [[9, 9, 9, 9], [1, 2, 3, 0]]
    assert mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    rows, input_ids, mask = batches[1]
    assert input_ids.tolist() == [[7, 8], [5, 0]] and mask.tolist() == [[1, 1], [1, 0]]
    assert batches[2][1].shape == (1, 0)  # an empty sequence still gets its row


@pytest.mark.parametrize("batch_size", [0, 1, 3, 100])
def test_every_row_once_whatever_the_batch_size(batch_size):
    ids = [[i] * (i % 4 + 1) for i in range(10)]
    seen = []
    for rows, input_ids, mask in padded_batches(ids, batch_size=batch_size, pad_id=-1):
        assert input_ids.shape == mask.shape and input_ids.shape[0] == len(rows) <= max(1, batch_size)
        for row, i in enumerate(rows):
            assert input_ids[row, : len(ids[i])].tolist() == ids[i] and int(mask[row].sum()) == len(ids[i])
        seen += rows
    assert sorted(seen) == list(range(10))


def test_batches_are_cut_where_padding_costs_more_than_a_forward_pass():
    from radvlm_grpo.scorers._batching import BATCH_COST_TOKENS, batch_bounds

    assert batch_bounds([30] * 70, 32) == [(0, 32), (32, 64), (64, 70)]  # equal lengths: full batches first
    # One long outlier would pad 31 short rows by 90 positions each: it gets a batch of its own.
    assert batch_bounds([100] + [10] * 31, 32) == [(0, 1), (1, 32)]
    # A drop that saves less padding than a forward pass costs stays in one batch.
    small = BATCH_COST_TOKENS // 4
    assert batch_bounds([12, 12, 12 - small // 2, 12 - small // 2], 32) == [(0, 4)]
    ids = [[1] * 100] + [[2] * 10] * 31
    assert [len(rows) for rows, _, _ in padded_batches(ids, batch_size=32, pad_id=0)] == [1, 31]
