"""Grounding metrics of Table 2 per benchmark, as bootstrap-ready statistics.

The numbers are ``radvlm_grpo.grounding_eval``'s (RadVLM's per-sample mAP@0.5 and pooled average IoU) and
``radvlm_grpo.soft_f1``'s (the paper's Hungarian soft-F1); this module only splits rows into the paper's benchmarks
and exposes each metric as additive per-sample statistics (mAP and soft-F1: means; average IoU: IoU sum over pairs).

Table 2 reports one column per *dataset*: phrase grounding has two (MS-CXR and PadChest-GR). The GRPO schema keeps
the task, not the source, so the benchmark of a row comes from an optional ``source`` column, else from RadVLM's id
prefix (``mscxr-test_12``, ``padchest-test_3``), else from its task. Abnormality grounding on the public NIH
ChestX-ray14 boxes (ids ``nih-...``, ``data/nih.py``) is its own benchmark, never shown under VinDr-CXR's column.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from radvlm_grpo.boxes import iou_matrix
from radvlm_grpo.data.schema import ABNORMALITY_GROUNDING, ANATOMICAL_GROUNDING, PHRASE_GROUNDING
from radvlm_grpo.evaluation.bootstrap import Statistic, mean_statistic, ratio_statistic
from radvlm_grpo.grounding_eval import sample_ap
from radvlm_grpo.soft_f1 import PAPER, soft_f1_batch

PHRASE_MS = f"{PHRASE_GROUNDING}/mscxr"
PHRASE_PAD = f"{PHRASE_GROUNDING}/padchest"
ABNORMALITY_NIH = f"{ABNORMALITY_GROUNDING}/nih"
ALL_GROUNDING = "grounding"

# Benchmark key -> Table 2 column header, in the paper's column order.
TABLE2_BENCHMARKS = {
    ANATOMICAL_GROUNDING: "Anatomy (Chest ImaGenome)",
    ABNORMALITY_GROUNDING: "Abnorm. (VinDr-CXR)",
    PHRASE_MS: "Phrase_MS (MS-CXR)",
    PHRASE_PAD: "Phrase_Pad (PadChest-GR)",
}

_PHRASE_SOURCES = {"mscxr": PHRASE_MS, "ms-cxr": PHRASE_MS, "padchest": PHRASE_PAD, "padchest-gr": PHRASE_PAD}


def benchmark_of(task: str, row_id: str = "", source: str | None = None) -> str:
    """The Table 2 benchmark of a grounding row (module docstring); other tasks map to themselves."""
    if task == ABNORMALITY_GROUNDING:
        names = ((source or "").lower(), re.split(r"[-_]", (row_id or "").lower())[0])
        return ABNORMALITY_NIH if any(name.startswith("nih") for name in names) else task
    if task != PHRASE_GROUNDING:
        return task
    for name in (source, re.split(r"[-_]", (row_id or "").lower())[0]):
        key = (name or "").lower().replace("_", "-")
        for prefix, benchmark in _PHRASE_SOURCES.items():
            if key.startswith(prefix):
                return benchmark
    return PHRASE_GROUNDING


def grounding_statistics(
    pred_boxes: Sequence[np.ndarray], true_boxes: Sequence[np.ndarray], iou_threshold: float = 0.5
) -> list[Statistic]:
    """``map_50`` (mean per-sample AP), ``avg_iou`` (IoU of every pair, pooled) and ``soft_f1`` (mean, paper form)."""
    if len(pred_boxes) != len(true_boxes):
        raise ValueError(f"{len(pred_boxes)} prediction sets but {len(true_boxes)} truth sets.")
    aps, iou_sums, pairs = [], [], []
    for p, t in zip(pred_boxes, true_boxes):
        p, t = np.asarray(p, dtype=np.float64).reshape(-1, 4), np.asarray(t, dtype=np.float64).reshape(-1, 4)
        aps.append(sample_ap(p, t, iou_threshold))
        both = len(p) > 0 and len(t) > 0
        iou_sums.append(float(iou_matrix(p, t).sum()) if both else 0.0)
        pairs.append(len(p) * len(t) if both else 0)
    soft = soft_f1_batch(pred_boxes, true_boxes, PAPER) if len(pred_boxes) else np.zeros(0)
    return [
        mean_statistic(f"map_{round(iou_threshold * 100)}", aps),
        ratio_statistic("avg_iou", iou_sums, pairs),
        mean_statistic("soft_f1", soft),
    ]


def group_rows(benchmarks: Sequence[str]) -> dict[str, list[int]]:
    """Row indices of each benchmark, in Table 2's order first, plus all grounding rows pooled when several."""
    groups: dict[str, list[int]] = {}
    for i, benchmark in enumerate(benchmarks):
        groups.setdefault(benchmark, []).append(i)
    order = [*TABLE2_BENCHMARKS, *sorted(set(groups) - set(TABLE2_BENCHMARKS))]
    ordered = {b: groups[b] for b in order if b in groups}
    if len(ordered) > 1:
        ordered[ALL_GROUNDING] = list(range(len(benchmarks)))
    return ordered
