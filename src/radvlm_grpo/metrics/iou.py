"""IoU of boxes in RadVLM's normalised ``[x1, y1, x2, y2]`` form, with the one rule for invalid boxes of
``radvlm_grpo.vocab.boxes``: an invalid box has IoU 0 with every box, itself included."""

from __future__ import annotations

import numpy as np

from radvlm_grpo.vocab.boxes import valid_mask


def _sanitised(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Invalid rows replaced by zeros (so no NaN warning escapes), plus the validity mask."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    valid = valid_mask(boxes)
    return np.where(valid[:, None], boxes, 0.0), valid


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of two (k, 4) arrays: ``iou[i] = IoU(a[i], b[i])``; 0 where either box is invalid."""
    a, valid_a = _sanitised(a)
    b, valid_b = _sanitised(b)
    width = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0.0, None)
    height = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0.0, None)
    inter = width * height
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    ok = valid_a & valid_b & (union > 0)
    return np.where(ok, inter / np.where(ok, union, 1.0), 0.0)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (n, 4) against every box of ``b`` (m, 4): shape (n, m); 0 for invalid boxes."""
    a, valid_a = _sanitised(a)
    b, valid_b = _sanitised(b)
    width = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0.0, None)
    height = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0.0, None)
    inter = width * height
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    ok = valid_a[:, None] & valid_b[None, :] & (union > 0)
    return np.where(ok, inter / np.where(ok, union, 1.0), 0.0)
