"""Box rewards for the grounding tasks: ``soft_f1`` (the paper's Hungarian soft-F1) and ``iou``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from radvlm_grpo.metrics.soft_f1 import (
    PAPER,
    SOFT_F1_VARIANTS,
    hungarian_iou_from_stats,
    match_stats_flat,
    soft_f1_from_stats,
)
from radvlm_grpo.metrics.thinking import FIRST, GROUNDING_PENALTY, Occurrence
from radvlm_grpo.rewards.base import RewardBase, RewardFunc, dataset_column
from radvlm_grpo.vocab.boxes import (
    RADVLM_SCALE,
    as_boxes,
    parse_boxes,
    parse_boxes_flat,
    undo_float32_storage,
    valid_mask,
)
from radvlm_grpo.vocab.schema import GROUNDING_TASKS


class GroundingReward(RewardBase):
    """Box rewards: predicted boxes parsed at ``box_scale``; truth from ``boxes`` ([0, 1]) or else ``solution``."""

    def __init__(
        self,
        name: str = "soft_f1",
        score: str = "soft_f1",
        variant: str = PAPER,
        box_scale: float = RADVLM_SCALE,
        thinking: bool = False,
        occurrence: Occurrence = FIRST,
        tasks: Sequence[str] | None = GROUNDING_TASKS,
        penalty: float = GROUNDING_PENALTY,
    ) -> None:
        super().__init__(name, tasks, thinking, occurrence, penalty)
        if score not in ("soft_f1", "iou"):
            raise ValueError(f"Unknown grounding score {score!r}; expected 'soft_f1' or 'iou'.")
        if variant not in SOFT_F1_VARIANTS:
            raise ValueError(f"Unknown soft-F1 variant {variant!r}; expected one of {SOFT_F1_VARIANTS}.")
        parse_boxes("", box_scale)  # validates the scale now rather than mid-training
        self.score, self.variant, self.box_scale = score, variant, float(box_scale)

    def _truth(self, boxes: object, solution: object) -> object:
        """One row's true boxes as given (a list of boxes), or parsed from ``solution``; None without ground truth."""
        if boxes is not None and not isinstance(boxes, (str, bytes)) and hasattr(boxes, "__len__") and len(boxes):
            return boxes
        if isinstance(solution, str):
            return parse_boxes(solution, self.box_scale)
        return [] if boxes is not None else None

    @staticmethod
    def _flat_truths(truths: list, ids: list) -> np.ndarray:
        """All rows' true boxes in one (M, 4) array; a malformed row raises, naming its id (a data error)."""
        flat = [box for truth in truths for box in truth]
        try:
            array = np.array(flat, dtype=np.float64) if flat else np.zeros((0, 4))
            if array.ndim == 2 and array.shape[1] == 4:
                return undo_float32_storage(array)  # a float32 `boxes` column: the boxes as written
        except (TypeError, ValueError):
            pass
        for truth, row_id in zip(truths, ids):
            try:
                as_boxes(truth)
            except (TypeError, ValueError) as error:
                raise ValueError(f"Row {row_id!r}: `boxes` is not a list of [x1, y1, x2, y2]: {error}") from None
        raise ValueError("The `boxes` column is not a list of [x1, y1, x2, y2] per row.")

    def __call__(self, completions: Sequence[object], log_metric: Callable | None = None, **columns) -> list:
        n = len(completions)
        handled = self._handled(columns, n)
        boxes_col = dataset_column(columns, "boxes", n) or [None] * n
        solution_col = dataset_column(columns, "solution", n) or [None] * n
        ids = dataset_column(columns, "id", n) or list(range(n))
        answers = self._answers(completions)

        rewards: list[float | None] = [None] * n
        rows, texts, truths, truth_ids = [], [], [], []
        missing_think, no_answer = [], []
        for i in range(n):
            if not handled[i]:
                continue
            truth = self._truth(boxes_col[i], solution_col[i])
            if truth is None:
                continue
            missing_think.append(answers[i] is None)
            no_answer.append(not answers[i])
            if not answers[i]:
                rewards[i] = self.penalty
                continue
            rows.append(i)
            texts.append(answers[i])
            truths.append(truth)
            truth_ids.append(ids[i])

        no_box = [1.0] * sum(no_answer)
        if rows:
            preds, n_pred = parse_boxes_flat(texts, self.box_scale)
            n_gt = np.array([len(t) for t in truths], dtype=np.int64)
            stats = match_stats_flat(preds, n_pred, self._flat_truths(truths, truth_ids), n_gt)
            values = (
                soft_f1_from_stats(stats, self.variant) if self.score == "soft_f1" else hungarian_iou_from_stats(stats)
            )
            for i, v in zip(rows, values):
                rewards[i] = float(v)
            no_box.extend(n_pred == 0)
            self._log(log_metric, "pred_boxes_mean", n_pred)
            if len(preds):
                self._log(log_metric, "invalid_box_frac", [1.0 - valid_mask(preds).mean()])
            matched = np.minimum(stats.n_pred, stats.n_gt)
            self._log(log_metric, "matched_iou_mean", (stats.mass / np.maximum(matched, 1))[matched > 0])
        self._log(log_metric, "no_box_frac", no_box)
        if self.thinking:
            self._log(log_metric, "missing_think_frac", missing_think)
        self._log_per_task(log_metric, columns, rewards)
        return rewards


# One factory per reward, with explicit keyword options: the registry reads each signature to route recipe options.
def soft_f1_reward(
    box_scale: float = RADVLM_SCALE,
    thinking: bool = False,
    soft_f1_variant: str = PAPER,
    grounding_occurrence: Occurrence = FIRST,
) -> RewardFunc:
    return GroundingReward("soft_f1", "soft_f1", soft_f1_variant, box_scale, thinking, grounding_occurrence)


def iou_reward(
    box_scale: float = RADVLM_SCALE, thinking: bool = False, grounding_occurrence: Occurrence = FIRST
) -> RewardFunc:
    return GroundingReward("iou", "iou", PAPER, box_scale, thinking, grounding_occurrence)
