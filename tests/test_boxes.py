"""Box parsing, formatting, the validity rule and IoU, with hand-computed values."""

import time
import warnings

import numpy as np
import pytest

from radvlm_grpo.metrics.iou import iou_matrix, pairwise_iou
from radvlm_grpo.vocab.boxes import (
    as_boxes,
    format_box,
    format_boxes,
    parse_boxes,
    parse_boxes_batch,
    parse_boxes_flat,
    valid_mask,
)

FIG1_PRED = [0.35, 0.51, 0.75, 0.64]
FIG1_TRUTH = [0.38, 0.47, 0.76, 0.62]
# Fig. 1: intersection x 0.38..0.75 = 0.37, y 0.51..0.62 = 0.11 -> 0.0407; areas 0.40 * 0.13 = 0.052 and
# 0.38 * 0.15 = 0.057; union 0.052 + 0.057 - 0.0407 = 0.0683; IoU = 0.0407 / 0.0683 = 0.59590...
FIG1_IOU = 0.0407 / 0.0683


def test_format_matches_radvlm():
    assert format_box([0.5, 0.25, 0.123, 1]) == "[0.5, 0.25, 0.12, 1.0]"
    assert format_boxes([[0.1, 0.2, 0.3, 0.4]]) == "[0.1, 0.2, 0.3, 0.4]"
    assert format_boxes([[0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.6, 0.6]]) == (
        "[0.0, 0.0, 1.0, 1.0], [0.1, 0.2, 0.3, 0.4] and [0.5, 0.5, 0.6, 0.6]"
    )


def test_parse_format_round_trip():
    rng = np.random.default_rng(0)
    for n in range(1, 6):
        boxes = rng.uniform(0, 1, size=(n, 4))
        text = f"The heart is located at the coordinates {format_boxes(boxes.tolist())} on the image."
        np.testing.assert_allclose(parse_boxes(text), np.round(boxes, 2), atol=1e-12)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("at [0.35, 0.51, 0.75, 0.64].", [[0.35, 0.51, 0.75, 0.64]]),
        ("[1,2,3,4]", [[1, 2, 3, 4]]),  # integers, no spaces
        ("[ 1 ,  2 ,3 , 4 ]", [[1, 2, 3, 4]]),  # spaces anywhere
        ("[1e-1, 2E-1, 3e+0, .5]", [[0.1, 0.2, 3.0, 0.5]]),  # exponents, leading dot
        ("[-0.1, +0.2, 1., 0.4]", [[-0.1, 0.2, 1.0, 0.4]]),  # signs, trailing dot
        ("[[0.1, 0.2, 0.3, 0.4]]", [[0.1, 0.2, 0.3, 0.4]]),  # nested brackets
        ('{"bbox_2d": [10, 20, 30, 40], "label": "heart"}', [[10, 20, 30, 40]]),  # Qwen3-VL JSON
        ("[0.1, 0.2, 0.3, 0.4] and [0.5, 0.6, 0.7, 0.8]", [[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]]),
    ],
)
def test_parse_forms(text, expected):
    np.testing.assert_allclose(parse_boxes(text), expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no box here",
        "[0.1, 0.2, 0.3]",
        "[a, b, c, d]",
        "[nan, 0, 1, 1]",
        "[0.1, 0.2, 0.3, 0.4",
        "[1 2 3 4]",
        None,
        3,
    ],
)
def test_parse_non_boxes(text):
    assert parse_boxes(text).shape == (0, 4)


def test_parse_scale_grid():
    # Qwen3-VL's 0-1000 grid: 350 / 1000 = 0.35, etc.
    np.testing.assert_allclose(parse_boxes("[350, 510, 750, 640]", scale=1000), [FIG1_PRED])
    np.testing.assert_allclose(as_boxes([[350, 510, 750, 640]], scale=1000), [FIG1_PRED])
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            parse_boxes("[1, 2, 3, 4]", scale=bad)


def test_overflow_is_an_invalid_box_not_an_error():
    boxes = parse_boxes("[1e999, 0, 1, 1] [" + "9" * 400 + ", 0, 1, 1]")
    assert boxes.shape == (2, 4) and np.isinf(boxes[:, 0]).all()
    assert not valid_mask(boxes).any()


def test_validity_rule():
    boxes = np.array(
        [
            [0.1, 0.1, 0.5, 0.5],  # valid
            [0.5, 0.1, 0.1, 0.5],  # x2 < x1
            [0.1, 0.5, 0.5, 0.1],  # y2 < y1
            [0.1, 0.1, 0.1, 0.5],  # zero width
            [np.nan, 0.1, 0.5, 0.5],
            [0.1, 0.1, np.inf, 0.5],
            [0.1, 0.1, 1.2, 0.5],  # outside [0, 1]
            [-0.1, 0.1, 0.5, 0.5],
            [0.0, 0.0, 1.0 + 1e-7, 1.0],  # within the 1e-6 tolerance
        ]
    )
    assert valid_mask(boxes).tolist() == [True, False, False, False, False, False, False, False, True]


def test_iou_hand_values():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert iou_matrix([FIG1_PRED], [FIG1_TRUTH])[0, 0] == pytest.approx(FIG1_IOU, abs=1e-12)
        assert round(FIG1_IOU, 3) == 0.596
        # Contained: [0, 0, 0.5, 0.5] inside [0, 0, 1, 1] -> 0.25 / 1.
        assert iou_matrix([[0, 0, 1, 1]], [[0, 0, 0.5, 0.5]])[0, 0] == pytest.approx(0.25)
        # Half overlap: inter 0.1 * 0.1 = 0.01, union 0.02 + 0.02 - 0.01 = 0.03 -> 1/3.
        assert iou_matrix([[0, 0, 0.2, 0.1]], [[0.1, 0, 0.3, 0.1]])[0, 0] == pytest.approx(1 / 3)
        # Touching edges and disjoint boxes: 0; identical: exactly 1.
        assert iou_matrix([[0, 0, 0.4, 0.2]], [[0.4, 0, 0.8, 0.2]])[0, 0] == 0.0
        assert iou_matrix([[0.84, 0.34, 0.91, 0.50]], [FIG1_TRUTH])[0, 0] == 0.0
        assert iou_matrix([FIG1_PRED], [FIG1_PRED])[0, 0] == 1.0
        # Invalid boxes: IoU 0 with everything, themselves included, and no NaN warning.
        bad = [[0.5, 0.5, 0.4, 0.9], [np.nan, 0, 1, 1], [0, 0, np.inf, 1]]
        assert not iou_matrix(bad, bad + [[0, 0, 1, 1]]).any()


def test_iou_matrix_shapes_and_pairwise():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 0.6, (8, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0.05, 0.4, (8, 2))], axis=1)
    a, b = boxes[:5], boxes[5:]
    m = iou_matrix(a, b)
    assert m.shape == (5, 3) and (m >= 0).all() and (m <= 1).all()
    np.testing.assert_allclose(iou_matrix(b, a), m.T)
    np.testing.assert_allclose(pairwise_iou(a[:3], b), np.diag(m[:3]))
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_as_boxes():
    assert as_boxes(None).shape == (0, 4)
    assert as_boxes([]).shape == (0, 4)
    np.testing.assert_allclose(as_boxes([0.1, 0.2, 0.3, 0.4]), [[0.1, 0.2, 0.3, 0.4]])
    with pytest.raises(ValueError):
        as_boxes([[0.1, 0.2, 0.3]])


def test_batch_parsers_agree():
    texts = ["[0.1, 0.2, 0.3, 0.4]", None, "none", "[1, 2, 3, 4] [5, 6, 7, 8]", ""]
    boxes, counts = parse_boxes_flat(texts, scale=10)
    assert counts.tolist() == [1, 0, 0, 2, 0] and boxes.shape == (3, 4)
    for got, text in zip(parse_boxes_batch(texts, scale=10), texts):
        np.testing.assert_allclose(got, parse_boxes(text, scale=10))
    assert parse_boxes_batch([]) == []


def test_parser_is_linear_on_adversarial_text():
    texts = [
        "[" + "1" * 1_000_000,
        "[" * 1_000_000,
        "[1, 1, 1, " * 100_000,
        "[ " + " " * 1_000_000 + "1",
        "[0.1, 0.1, 0.2, 0.2] " * 50_000,
    ]
    start = time.perf_counter()
    found = [len(parse_boxes(t)) for t in texts]
    assert time.perf_counter() - start < 2.0
    assert found == [0, 0, 0, 0, 50_000]


def test_float32_stored_boxes_are_read_back_as_written():
    """A float32 `boxes` column gives 0.3499999940395355 for 0.35; as_boxes reads back 0.35 (an exact answer scores 1)."""
    written = [[0.35, 0.51, 0.75, 0.64], [0.1, 0.123456, 0.9, 0.99]]
    stored = np.asarray(written, dtype=np.float32).astype(np.float64).tolist()  # what datasets returns
    assert stored[0][0] == 0.3499999940395355
    assert as_boxes(stored).tolist() == written
    assert as_boxes([[350.5, 510, 750, 640]], scale=1000).tolist() == [[0.3505, 0.51, 0.75, 0.64]]
    # Values that are not float32 (a float64 column, parsed text) and non-finite ones are kept as they are.
    exact = [[0.123456789012, 0.2, 0.3, 0.4], [np.nan, np.inf, 1e300, 0.5]]
    np.testing.assert_array_equal(as_boxes(exact), np.array(exact))
