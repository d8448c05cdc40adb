"""Grounding evaluation: RadVLM's per-sample mAP@0.5 and average IoU (the paper's Table 2), plus extras.

RadVLM's mAP (method.md 4.2) is computed per sample, without confidences:

1. predicted boxes are taken in output order; each is matched to its argmax-IoU true box when that IoU is >= the
   threshold and that true box is still unmatched (else it is a false positive, even if another true box would do);
2. the sample's AP is the VOC area under its cumulative precision/recall curve (recall padded with 0 and 1, precision
   with 0 and 0, precision made non-increasing from the right, summed where recall changes);
3. a sample with no predicted (or no true) box has AP 0; mAP is the mean over samples.

RadVLM's "average IoU" is the mean IoU of *every* (predicted, true) pair, pooled over the samples that have both.
A dataset-level COCO-style AP (pycocotools' class-agnostic matching, 101-point interpolation, IoU 0.50:0.95) is offered
as an extra that does not depend on the per-sample averaging. Boxes follow ``radvlm_grpo.vocab.boxes`` (invalid boxes
have IoU 0, so an invalid prediction is a false positive). RadVLM's own parser only read unsigned decimals; this one
reads every box form, which changes nothing on well-formed answers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from radvlm_grpo.metrics.iou import iou_matrix
from radvlm_grpo.metrics.soft_f1 import PAPER, soft_f1_batch
from radvlm_grpo.metrics.thinking import EVAL_MAX_CHARS, LAST, Occurrence, extract_answer
from radvlm_grpo.vocab.boxes import RADVLM_SCALE, as_boxes, parse_boxes

# An answer is read up to this many characters before its boxes are parsed (method.md 3.3: the authors cut answers to
# 4,000 characters before scoring); ``boxes_from_texts(max_chars=None)`` reads all of it.
ANSWER_MAX_CHARS = EVAL_MAX_CHARS
COCO_IOU_THRESHOLDS = tuple(np.round(np.linspace(0.5, 0.95, 10), 2))
COCO_RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC all-point AP: area under the precision envelope, summed where recall changes."""
    mrec = np.concatenate(([0.0], np.asarray(recall, dtype=np.float64), [1.0]))
    mpre = np.concatenate(([0.0], np.asarray(precision, dtype=np.float64), [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    changes = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]))


def sample_ap(prediction: np.ndarray, truth: np.ndarray, iou_threshold: float = 0.5) -> float:
    """RadVLM's AP of one sample (module docstring, steps 1-2); 0 without predicted or true boxes."""
    prediction = np.asarray(prediction, dtype=np.float64).reshape(-1, 4)
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 4)
    if len(prediction) == 0 or len(truth) == 0:
        return 0.0
    ious = iou_matrix(prediction, truth)
    best = ious.argmax(axis=1)  # first maximum on ties, as np.argmax
    matched = np.zeros(len(truth), dtype=bool)
    hits = np.zeros(len(prediction))
    for i, j in enumerate(best):
        if ious[i, j] >= iou_threshold and not matched[j]:
            hits[i] = 1.0
            matched[j] = True
    tp = np.cumsum(hits)
    fp = np.cumsum(1.0 - hits)
    return voc_ap(tp / len(truth), tp / (tp + fp))


def _threshold_key(iou_threshold: float) -> str:
    return f"map_{round(iou_threshold * 100)}"


def grounding_map(
    predictions: Sequence[np.ndarray], truths: Sequence[np.ndarray], iou_threshold: float = 0.5
) -> dict[str, float | list[float]]:
    """``{"map_50": mean per-sample AP, "avg_iou": pooled mean IoU of all pairs, "per_sample": [AP, ...]}``.

    ``avg_iou`` is 0 when no sample has both predicted and true boxes (RadVLM then left it out).
    """
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} prediction sets but {len(truths)} truth sets.")
    aps = [sample_ap(p, t, iou_threshold) for p, t in zip(predictions, truths)]
    iou_sum, pairs = 0.0, 0
    for p, t in zip(predictions, truths):
        p, t = np.asarray(p).reshape(-1, 4), np.asarray(t).reshape(-1, 4)
        if len(p) and len(t):
            iou_sum += float(iou_matrix(p, t).sum())
            pairs += len(p) * len(t)
    return {
        _threshold_key(iou_threshold): float(np.mean(aps)) if aps else 0.0,
        "avg_iou": iou_sum / pairs if pairs else 0.0,
        "per_sample": aps,
    }


def _coco_match(ious: np.ndarray, threshold: float) -> np.ndarray:
    """pycocotools' per-image greedy match: each detection, in rank order, takes the best still-free truth."""
    hits = np.zeros(ious.shape[0], dtype=bool)
    taken = np.zeros(ious.shape[1], dtype=bool)
    for d in range(ious.shape[0]):
        best_iou, best_g = min(threshold, 1 - 1e-10), -1
        for g in range(ious.shape[1]):
            if taken[g] or ious[d, g] < best_iou:
                continue
            best_iou, best_g = ious[d, g], g
        if best_g >= 0:
            taken[best_g] = True
            hits[d] = True
    return hits


def coco_ap(
    predictions: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    scores: Sequence[Sequence[float]] | None = None,
    iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS,
    max_dets: int = 100,
) -> dict[str, float]:
    """Dataset-level, class-agnostic COCO AP: ``{"coco_ap": AP@[.50:.95], "coco_ap50": ..., "coco_ap75": ...}``.

    Follows pycocotools' ``COCOeval`` for one category and the "all" area range: detections ranked by ``scores``
    (a stable sort, so without scores, which grounding answers lack, the rank is output order within a sample and
    sample order across samples, as pycocotools orders equal scores), at most ``max_dets`` per sample, 101-point
    interpolated precision. Returns 0 for every figure when there is no true box.
    """
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} prediction sets but {len(truths)} truth sets.")
    thresholds = [float(t) for t in iou_thresholds]
    n_truth = 0
    all_scores, all_hits = [], []
    for k, (p, t) in enumerate(zip(predictions, truths)):
        p, t = np.asarray(p, dtype=np.float64).reshape(-1, 4), np.asarray(t, dtype=np.float64).reshape(-1, 4)
        s = np.ones(len(p)) if scores is None else np.asarray(scores[k], dtype=np.float64).reshape(-1)
        order = np.argsort(-s, kind="mergesort")[:max_dets]
        p, s = p[order], s[order]
        n_truth += len(t)
        ious = iou_matrix(p, t)
        all_scores.append(s)
        all_hits.append(np.stack([_coco_match(ious, thr) for thr in thresholds], axis=1) if len(p) else None)
    results = {"coco_ap": 0.0, "coco_ap50": 0.0, "coco_ap75": 0.0}
    if n_truth == 0:
        return results
    hits_list = [h for h in all_hits if h is not None]
    if not hits_list:
        return results
    ranked_scores = np.concatenate(all_scores)
    hits = np.concatenate(hits_list)
    order = np.argsort(-ranked_scores, kind="mergesort")
    hits = hits[order]
    per_threshold = []
    for j in range(len(thresholds)):
        tp = np.cumsum(hits[:, j])
        fp = np.cumsum(~hits[:, j])
        recall = tp / n_truth
        precision = tp / (tp + fp + np.spacing(1))
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        at = np.searchsorted(recall, COCO_RECALL_POINTS, side="left")
        q = np.where(at < len(precision), precision[np.minimum(at, len(precision) - 1)], 0.0)
        per_threshold.append(float(q.mean()))
    results["coco_ap"] = float(np.mean(per_threshold))
    for name, value in (("coco_ap50", 0.5), ("coco_ap75", 0.75)):
        if value in thresholds:
            results[name] = per_threshold[thresholds.index(value)]
    return results


def boxes_from_texts(
    predictions: Sequence[str],
    references: Sequence[object],
    box_scale: float = RADVLM_SCALE,
    reference_scale: float = RADVLM_SCALE,
    thinking: bool = False,
    occurrence: Occurrence = LAST,
    max_chars: int | None = ANSWER_MAX_CHARS,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Predicted and true boxes, normalised to [0, 1], from model answers and references.

    ``references`` are box lists (scaled by ``reference_scale``, the dataset's [0, 1] by default) or answer texts
    (parsed at ``box_scale``, like the predictions). A thinking answer is taken after the last ``</think>``; one
    without ``</think>`` counts as an answer with no box. Every answer is read up to its first ``max_chars``
    characters (4,000, as the authors evaluated; a box written after them is not seen; ``None`` reads it all).
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references.")
    if max_chars is not None and (isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars <= 0):
        raise ValueError(f"max_chars must be a positive integer or None (no cut); got {max_chars!r}.")
    pred_boxes, true_boxes = [], []
    for text, ref in zip(predictions, references):
        answer = extract_answer(text, thinking=thinking, occurrence=occurrence)
        pred_boxes.append(parse_boxes(answer[:max_chars] if answer else "", box_scale))
        true_boxes.append(parse_boxes(ref, box_scale) if isinstance(ref, str) else as_boxes(ref, reference_scale))
    return pred_boxes, true_boxes


def evaluate_grounding(
    predictions: Sequence[str],
    references: Sequence[object],
    tasks: Sequence[str] | None = None,
    box_scale: float = RADVLM_SCALE,
    reference_scale: float = RADVLM_SCALE,
    thinking: bool = False,
    occurrence: Occurrence = LAST,
    iou_threshold: float = 0.5,
    max_chars: int | None = ANSWER_MAX_CHARS,
) -> dict[str, dict[str, float]]:
    """Score model answers per grounding task: ``{task: {"map_50", "avg_iou", "soft_f1", "coco_ap", ..., "n"}}``.

    Inputs as ``boxes_from_texts``. Rows without a task go under "all"; "all" also pools every row when several tasks
    are present.
    """
    pred_boxes, true_boxes = boxes_from_texts(
        predictions, references, box_scale, reference_scale, thinking, occurrence, max_chars
    )
    tasks = list(tasks) if tasks is not None else ["all"] * len(predictions)
    if len(tasks) != len(predictions):
        raise ValueError(f"{len(tasks)} tasks for {len(predictions)} predictions.")
    groups: dict[str, list[int]] = {}
    for i, task in enumerate(tasks):
        groups.setdefault(task or "all", []).append(i)
    if len(groups) > 1:
        groups["all"] = list(range(len(predictions)))
    report = {}
    for task, rows in groups.items():
        p = [pred_boxes[i] for i in rows]
        t = [true_boxes[i] for i in rows]
        mapped = grounding_map(p, t, iou_threshold)
        report[task] = {
            _threshold_key(iou_threshold): mapped[_threshold_key(iou_threshold)],
            "avg_iou": mapped["avg_iou"],
            "soft_f1": float(np.mean(soft_f1_batch(p, t, PAPER))),
            **coco_ap(p, t),
            "n": len(rows),
        }
    return report
