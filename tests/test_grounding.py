"""Soft-F1 (both forms), RadVLM's per-sample mAP, average IoU and the COCO-style AP, against hand-computed values."""

import itertools

import numpy as np
import pytest

from radvlm_grpo.metrics.grounding_ap import (
    boxes_from_texts,
    coco_ap,
    evaluate_grounding,
    grounding_map,
    sample_ap,
    voc_ap,
)
from radvlm_grpo.metrics.soft_f1 import (
    DEV,
    PAPER,
    hungarian_iou_from_stats,
    match_stats,
    match_stats_flat,
    soft_f1,
    soft_f1_batch,
    soft_f1_naive,
)

FIG1_PRED = [0.35, 0.51, 0.75, 0.64]
FIG1_TRUTH = [0.38, 0.47, 0.76, 0.62]
FIG1_MISS = [0.84, 0.34, 0.91, 0.50]
FIG1_IOU = 0.0407 / 0.0683  # see test_boxes.py: 0.59590...
A = [0.1, 0.1, 0.3, 0.3]
B = [0.6, 0.6, 0.9, 0.9]


def random_boxes(rng, n, low=0.0, high=0.6):
    xy = rng.uniform(low, high, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(0.05, 0.35, (n, 2))], axis=1)


# --- soft-F1 ----------------------------------------------------------------------------------------------------------


def test_fig1():
    # One box against one: paper form = 2 * IoU / (1 + 1) = IoU = 0.596 (the figure's "0.6").
    assert soft_f1([FIG1_PRED], [FIG1_TRUTH]) == pytest.approx(FIG1_IOU, abs=1e-12)
    assert round(soft_f1([FIG1_PRED], [FIG1_TRUTH]), 3) == 0.596
    # Dev form: precision = 0.596 / (0.596 + 0) = 1, recall = 0.596 / 1, F1 = 2 * 0.596 / 1.596 = 0.747.
    assert soft_f1([FIG1_PRED], [FIG1_TRUTH], DEV) == pytest.approx(2 * FIG1_IOU / (1 + FIG1_IOU), abs=1e-12)
    assert round(soft_f1([FIG1_PRED], [FIG1_TRUTH], DEV), 3) == 0.747
    # The figure's second example does not overlap: 0 in both forms.
    assert soft_f1([FIG1_MISS], [FIG1_TRUTH]) == 0.0
    assert soft_f1([FIG1_MISS], [FIG1_TRUTH], DEV) == 0.0


@pytest.mark.parametrize("variant", [PAPER, DEV])
def test_empty_sets_score_zero(variant):
    assert soft_f1(np.zeros((0, 4)), [A], variant) == 0.0
    assert soft_f1([A], np.zeros((0, 4)), variant) == 0.0
    assert soft_f1(np.zeros((0, 4)), np.zeros((0, 4)), variant) == 0.0
    assert soft_f1_batch([], [], variant).shape == (0,)


@pytest.mark.parametrize("variant", [PAPER, DEV])
def test_duplicates_and_extra_predictions(variant):
    # [A, A] vs [A]: one pair matched with IoU 1, the duplicate unmatched. Paper: 2 * 1 / (2 + 1) = 2/3.
    # Dev: precision 1 / (1 + 1) = 1/2, recall 1 / 1 = 1, F1 = 2 * 0.5 / 1.5 = 2/3.
    assert soft_f1([A, A], [A], variant) == pytest.approx(2 / 3)
    # An extra disjoint box behaves the same; a missed truth too (recall 1/2, precision 1): 2/3.
    assert soft_f1([A, B], [A], variant) == pytest.approx(2 / 3)
    assert soft_f1([A], [A, B], variant) == pytest.approx(2 / 3)
    # Five predictions for one truth: paper 2 / 6 = 1/3; dev: precision 1/5, recall 1 -> 2 * 0.2 / 1.2 = 1/3.
    assert soft_f1([A, B, B, B, B], [A], variant) == pytest.approx(1 / 3)


def test_global_matching_beats_greedy():
    # Truths X, Y; prediction a overlaps both, b overlaps only Y (hand-computed IoUs):
    #   IoU(a, X) = (0.2 * 0.2) / (0.08 + 0.08 - 0.04) = 1/3,   IoU(a, Y) = (0.3 * 0.2) / (0.16 - 0.06) = 0.6,
    #   IoU(b, Y) = 0.6,   IoU(b, X) = 0 (edges touch).
    # Greedy best-first would take a-Y (0.6) and leave b-X (0): mass 0.6. Hungarian: a-X + b-Y = 1/3 + 0.6.
    x, y = [0.0, 0.0, 0.4, 0.2], [0.3, 0.0, 0.7, 0.2]
    a, b = [0.2, 0.0, 0.6, 0.2], [0.4, 0.0, 0.8, 0.2]
    mass = 1 / 3 + 0.6
    assert soft_f1([a, b], [x, y]) == pytest.approx(2 * mass / 4)  # paper: 0.4667
    # Dev: 2 pairs hit, precision = mass / mass = 1, recall = mass / 2 -> F1 = 2 * (mass / 2) / (1 + mass / 2).
    recall = mass / 2
    assert soft_f1([a, b], [x, y], DEV) == pytest.approx(2 * recall / (1 + recall))  # 0.6364


def test_dev_form_counts_zero_iou_pairs_as_false_positives():
    # [A, B] vs [A, C] with B and C disjoint: pairs A-A (1) and B-C (0). Dev: n_hit = 1, FP = 2 - 1 = 1,
    # precision 1 / (1 + 1) = 1/2, recall 1 / 2 -> F1 1/2. Paper: 2 * 1 / 4 = 1/2.
    c = [0.4, 0.0, 0.5, 0.1]
    assert soft_f1([A, B], [A, c], DEV) == pytest.approx(0.5)
    assert soft_f1([A, B], [A, c], PAPER) == pytest.approx(0.5)


def test_invalid_predictions_are_unmatched():
    # An invalid box (x2 < x1) is a prediction with IoU 0: [A, bad] vs [A] scores as [A, B] vs [A].
    bad = [0.5, 0.5, 0.4, 0.9]
    assert soft_f1([A, bad], [A]) == pytest.approx(2 / 3)
    assert soft_f1([[np.nan, 0, 1, 1]], [A]) == 0.0


def test_hungarian_iou():
    s = match_stats([[FIG1_PRED], [A, A], []], [[FIG1_TRUTH], [A], [A]])
    # One against one: the IoU. [A, A] vs [A]: 1 / max(2, 1). Nothing predicted: 0.
    np.testing.assert_allclose(hungarian_iou_from_stats(s), [FIG1_IOU, 0.5, 0.0])


@pytest.mark.parametrize("variant", [PAPER, DEV])
def test_batched_equals_naive(variant):
    rng = np.random.default_rng(0)
    preds, truths = [], []
    for _ in range(600):
        g = int(rng.integers(0, 6))
        t = random_boxes(rng, g)
        # Noisy copies of the truths plus 0-2 random boxes, shuffled, then a random number of them kept.
        p = np.concatenate([t + rng.normal(0, 0.03, t.shape), random_boxes(rng, int(rng.integers(0, 3)))])
        preds.append(p[rng.permutation(len(p))][: int(rng.integers(0, len(p) + 1))])
        truths.append(t)
    preds.append(random_boxes(rng, 7))  # 7 x 6 has 5040 assignments: the SciPy path
    truths.append(random_boxes(rng, 6))
    batched = soft_f1_batch(preds, truths, variant)
    naive = np.array([soft_f1_naive(p, t, variant) for p, t in zip(preds, truths)])
    np.testing.assert_allclose(batched, naive, atol=1e-12)
    assert batched.mean() > 0.2  # the batch is not trivially empty


def test_flat_counts_are_checked():
    with pytest.raises(ValueError):
        match_stats_flat(np.zeros((2, 4)), [1], np.zeros((1, 4)), [1])
    with pytest.raises(ValueError):
        soft_f1_batch([[A]], [[A]], variant="figure")


def _check_properties(pred, truth):
    for variant in (PAPER, DEV):
        score = soft_f1(pred, truth, variant)
        assert 0.0 <= score <= 1.0
        shuffled = soft_f1(pred[::-1], truth[::-1], variant)
        assert shuffled == pytest.approx(score, abs=1e-12)
    if len(truth):
        assert soft_f1(truth, truth) == 1.0
        assert soft_f1(truth[::-1], truth, DEV) == 1.0


def test_properties_seeded():
    rng = np.random.default_rng(3)
    for _ in range(120):
        t = random_boxes(rng, int(rng.integers(0, 5)))
        p = np.concatenate([t + rng.normal(0, 0.05, t.shape), random_boxes(rng, int(rng.integers(0, 3)))])
        _check_properties(p, t)


def test_properties_hypothesis():
    hypothesis = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")

    coordinate = st.floats(0.0, 0.7, allow_nan=False)
    box = st.tuples(coordinate, coordinate, st.floats(0.01, 0.3), st.floats(0.01, 0.3)).map(
        lambda b: [b[0], b[1], b[0] + b[2], b[1] + b[3]]
    )

    @hypothesis.settings(max_examples=100, deadline=None)
    @hypothesis.given(st.lists(box, max_size=5), st.lists(box, max_size=5))
    def check(pred, truth):
        _check_properties(np.array(pred).reshape(-1, 4), np.array(truth).reshape(-1, 4))

    check()


# --- RadVLM's per-sample mAP and average IoU -------------------------------------------------------------------------


def test_voc_ap_hand_values():
    # recall [0, 1], precision [0, 0.5]: envelope 0.5 over recall 0 -> 1: AP 0.5.
    assert voc_ap([0.0, 1.0], [0.0, 0.5]) == pytest.approx(0.5)
    # recall [0.5], precision [1]: 0.5 * 1 + 0.5 * 0 = 0.5.
    assert voc_ap([0.5], [1.0]) == pytest.approx(0.5)


def test_sample_ap_hand_values():
    assert sample_ap([B], [B]) == 1.0
    # Hit then miss: tp [1, 1], fp [0, 1] -> recall [1, 1], precision [1, 0.5]; the envelope is 1 up to recall 1: AP 1.
    assert sample_ap([B, A], [B]) == 1.0
    # Miss then hit: recall [0, 1], precision [0, 0.5]: AP 0.5 (output order matters without confidences).
    assert sample_ap([A, B], [B]) == pytest.approx(0.5)
    # One of two truths found: recall 0.5 at precision 1: AP 0.5.
    assert sample_ap([A], [A, B]) == pytest.approx(0.5)
    # Duplicate: the second copy's argmax truth is taken -> false positive after the hit: AP 1.
    assert sample_ap([A, A], [A]) == 1.0
    # Below the threshold: Fig. 1's IoU 0.596 is a hit at 0.5 but not at 0.75.
    assert sample_ap([FIG1_PRED], [FIG1_TRUTH]) == 1.0
    assert sample_ap([FIG1_PRED], [FIG1_TRUTH], iou_threshold=0.75) == 0.0
    # No predicted or no true box: 0.
    assert sample_ap(np.zeros((0, 4)), [A]) == 0.0
    assert sample_ap([A], np.zeros((0, 4))) == 0.0


def test_sample_ap_argmax_rule_differs_from_coco():
    # Truths X and Y overlap; p1 = X exactly; p2 has IoU 0.85 with X and 0.79 with Y (both >= 0.5):
    #   IoU(p2, X) = (0.46 * 0.5) / (0.25 + 0.25 - 0.23) = 0.852,  IoU(p2, Y) = (0.44 * 0.5) / (0.5 - 0.22) = 0.786.
    # RadVLM matches p2 to its argmax truth X, already taken -> false positive: tp [1, 0], recall [0.5, 0.5],
    # precision [1, 0.5] -> AP = 0.5 * 1 + 0.5 * 0 = 0.5. COCO would give p2 the free truth Y.
    x, y = [0.0, 0.0, 0.5, 0.5], [0.1, 0.0, 0.6, 0.5]
    p2 = [0.04, 0.0, 0.54, 0.5]
    assert sample_ap([x, p2], [x, y]) == pytest.approx(0.5)
    assert coco_ap([np.array([x, p2])], [np.array([x, y])])["coco_ap50"] == pytest.approx(1.0)


def test_grounding_map_mean_and_pooled_iou():
    half = [[0.0, 0.0, 0.2, 0.1]], [[0.1, 0.0, 0.3, 0.1]]  # IoU 1/3 (test_boxes.py)
    preds = [np.array([B]), np.array(half[0] + [A]), np.zeros((0, 4))]
    truths = [np.array([B]), np.array(half[1]), np.array([A])]
    result = grounding_map(preds, truths)
    # APs: 1 (hit); 0 (IoU 1/3 and 0 both miss); 0 (nothing predicted) -> mAP 1/3.
    assert result["per_sample"] == [1.0, 0.0, 0.0]
    assert result["map_50"] == pytest.approx(1 / 3)
    # Pooled over all pairs of samples with both sets: (1 + 1/3 + 0) / 3 pairs = 4/9.
    assert result["avg_iou"] == pytest.approx(4 / 9)
    assert grounding_map([np.zeros((0, 4))], [np.array([A])])["avg_iou"] == 0.0
    assert "map_75" in grounding_map(preds, truths, iou_threshold=0.75)


# --- COCO-style AP ----------------------------------------------------------------------------------------------------


def coco_case(seed=0, n=40):
    """40 samples of 1-3 truths, 80% found with 0.015 noise, 40% with one extra box (the pycocotools fixture)."""
    rng = np.random.default_rng(seed)
    preds, truths = [], []
    for _ in range(n):
        g = int(rng.integers(1, 4))
        xy = rng.uniform(0, 0.6, (g, 2))
        t = np.concatenate([xy, xy + rng.uniform(0.05, 0.35, (g, 2))], axis=1)
        keep = rng.uniform(size=g) > 0.2
        p = t[keep] + rng.normal(0, 0.015, (int(keep.sum()), 4))
        if rng.uniform() < 0.4:
            xy = rng.uniform(0, 0.6, (1, 2))
            p = np.concatenate([p, np.concatenate([xy, xy + 0.2], axis=1)])
        p = np.clip(p, 0, 1)
        p[:, 2:] = np.maximum(p[:, 2:], p[:, :2] + 0.01)
        preds.append(p)
        truths.append(t)
    return preds, truths


def test_coco_ap_golden_values():
    # Computed once with pycocotools 2.0 (COCOeval "bbox", one category, boxes as xywh, all scores 1, then seeded
    # uniform scores); the implementation matched it to 1e-15.
    preds, truths = coco_case()
    got = coco_ap(preds, truths)
    assert got["coco_ap"] == pytest.approx(0.33935455575520146, abs=1e-12)
    assert got["coco_ap50"] == pytest.approx(0.6922829848001454, abs=1e-12)
    assert got["coco_ap75"] == pytest.approx(0.2961715641633882, abs=1e-12)
    rng = np.random.default_rng(9)
    scores = [rng.uniform(size=len(p)) for p in preds]
    got = coco_ap(preds, truths, scores)
    assert got["coco_ap"] == pytest.approx(0.3301706293515648, abs=1e-12)
    assert got["coco_ap50"] == pytest.approx(0.673526437083936, abs=1e-12)


def test_coco_ap_edge_cases():
    # pycocotools divides by tp + fp + eps, so a perfect result is 1 - 2e-16.
    assert coco_ap([np.array([A])], [np.array([A])]) == pytest.approx(
        {"coco_ap": 1.0, "coco_ap50": 1.0, "coco_ap75": 1.0}
    )
    assert coco_ap([np.zeros((0, 4))], [np.array([A])])["coco_ap"] == 0.0
    assert coco_ap([np.array([A])], [np.zeros((0, 4))])["coco_ap"] == 0.0


def test_coco_ap_against_pycocotools():
    pytest.importorskip("pycocotools")
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    for seed in (1, 2):
        preds, truths = coco_case(seed)
        images, anns, dets = [], [], []
        for k, (p, t) in enumerate(zip(preds, truths)):
            images.append({"id": k + 1, "width": 1, "height": 1})
            for b in t:
                w, h = b[2] - b[0], b[3] - b[1]
                anns.append(
                    {"id": len(anns) + 1, "image_id": k + 1, "category_id": 1, "bbox": [b[0], b[1], w, h],
                     "area": w * h, "iscrowd": 0}
                )  # fmt: skip
            for b in p:
                dets.append({"image_id": k + 1, "category_id": 1, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                             "score": 1.0})  # fmt: skip
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "finding"}]}
        with contextlib.redirect_stdout(io.StringIO()):
            gt.createIndex()
            evaluation = COCOeval(gt, gt.loadRes(dets), "bbox")
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        got = coco_ap(preds, truths)
        assert got["coco_ap"] == pytest.approx(evaluation.stats[0], abs=1e-12)
        assert got["coco_ap50"] == pytest.approx(evaluation.stats[1], abs=1e-12)
        assert got["coco_ap75"] == pytest.approx(evaluation.stats[2], abs=1e-12)


# --- answers as text, per task -----------------------------------------------------------------------------------------


def test_boxes_from_texts_scales_and_thinking():
    preds, truths = boxes_from_texts(
        ["<think>maybe [0, 0, 100, 100]</think> at [350, 510, 750, 640]", "no think tag [1, 2, 3, 4]"],
        [[FIG1_TRUTH], "at [380, 470, 760, 620]"],
        box_scale=1000,
        thinking=True,
    )
    np.testing.assert_allclose(preds[0], [FIG1_PRED])
    assert preds[1].shape == (0, 4)  # no </think>: no answer, no box
    np.testing.assert_allclose(truths[1], [FIG1_TRUTH])


def test_evaluate_grounding_per_task():
    predictions = [f"at {B}", f"at {A}", "nothing", f"at {FIG1_PRED}"]
    references = [[B], [B], [A], [FIG1_TRUTH]]
    tasks = ["anatomical_grounding", "anatomical_grounding", "phrase_grounding", "phrase_grounding"]
    report = evaluate_grounding(predictions, references, tasks)
    assert set(report) == {"anatomical_grounding", "phrase_grounding", "all"}
    assert report["anatomical_grounding"]["map_50"] == pytest.approx(0.5)  # APs 1 and 0
    assert report["phrase_grounding"]["map_50"] == pytest.approx(0.5)  # APs 0 and 1
    assert report["phrase_grounding"]["soft_f1"] == pytest.approx(FIG1_IOU / 2)
    assert report["all"]["n"] == 4 and report["all"]["map_50"] == pytest.approx(0.5)
    assert set(evaluate_grounding(predictions, references)) == {"all"}


def test_exhaustive_small_shapes_match_scipy():
    # Every shape up to 4 x 4 (the enumerated path) against SciPy, on dense random IoUs.
    rng = np.random.default_rng(5)
    for p, g in itertools.product(range(1, 5), repeat=2):
        preds = [random_boxes(rng, p, 0.2, 0.4) for _ in range(20)]
        truths = [random_boxes(rng, g, 0.2, 0.4) for _ in range(20)]
        for variant in (PAPER, DEV):
            naive = [soft_f1_naive(a, b, variant) for a, b in zip(preds, truths)]
            np.testing.assert_allclose(soft_f1_batch(preds, truths, variant), naive, atol=1e-12)


def test_an_exact_answer_against_float32_stored_truth_scores_exactly_one():
    truth = np.asarray([[0.35, 0.51, 0.75, 0.64]], dtype=np.float32).astype(np.float64).tolist()
    report = evaluate_grounding(["[0.35, 0.51, 0.75, 0.64]"], [truth])["all"]
    assert report["soft_f1"] == 1.0 and report["avg_iou"] == 1.0 and report["map_50"] == 1.0
