"""Bounding boxes in RadVLM's text form: ``[x1, y1, x2, y2]`` normalised to [0, 1].

The formatter here writes exactly what RadVLM's instruction data contains (Python ``round(v, 2)``, so ``0.5`` and not
``0.50``; several boxes joined by ", " with " and " before the last), so that training data and the reward parser agree.

The parser reads every ``[x1, y1, x2, y2]`` group of a free text (the words around them do not matter, as in the
authors' reward) and divides by ``scale``: 1 for RadVLM's normalised boxes, 1000 for Qwen3-VL's native 0-1000 grid.

**Invalid boxes, one rule.** A box is *valid* when its four normalised coordinates are finite, lie in [0, 1] (with a
1e-6 tolerance) and ``x1 < x2`` and ``y1 < y2``. An invalid box is kept in its set (it was written, so it counts as a
prediction, or as a truth) but its IoU with every box, itself included, is 0. A malformed prediction is therefore an
unmatched false positive: it never raises, never earns reward, and still costs precision. A group that is not four
numbers (``[1, 2, 3]``, ``[a, b, c, d]``, ``[nan, ...]``) is not a box at all and is not parsed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

Box = Sequence[float]

# Signed decimal with optional fraction and exponent ("1", "-0.5", ".5", "1.", "3e-2"). Possessive quantifiers keep the
# scan linear on adversarial text (long digit runs, megabytes of brackets).
_NUMBER = r"[-+]?+(?:\d++(?:\.\d*+)?+|\.\d++)(?:[eE][-+]?+\d++)?+"
BOX_PATTERN = re.compile(rf"\[\s*+({_NUMBER})\s*+,\s*+({_NUMBER})\s*+,\s*+({_NUMBER})\s*+,\s*+({_NUMBER})\s*+\]")

RANGE_TOLERANCE = 1e-6
RADVLM_SCALE = 1.0
QWEN3VL_SCALE = 1000.0
FLOAT32_MAX_DECIMALS = 12  # digits after the point tried when reading back float32-stored values


def format_box(box: Box, decimals: int = 2) -> str:
    """``[0.35, 0.51, 0.75, 0.64]``: each coordinate as ``str(round(float(v), decimals))``."""
    if len(box) != 4:
        raise ValueError(f"A box has 4 coordinates [x1, y1, x2, y2]; got {list(box)!r}.")
    return "[" + ", ".join(str(round(float(v), decimals)) for v in box) + "]"


def format_boxes(boxes: Sequence[Box], decimals: int = 2) -> str:
    """RadVLM's join: ``"[a], [b] and [c]"``; a single box is just ``"[a]"``."""
    if not boxes:
        raise ValueError("format_boxes needs at least one box.")
    parts = [format_box(b, decimals) for b in boxes]
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _check_scale(scale: float) -> float:
    scale = float(scale)
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"The box scale must be a positive number (1 for RadVLM, 1000 for Qwen3-VL); got {scale!r}.")
    return scale


def parse_boxes(text: str | None, scale: float = RADVLM_SCALE) -> np.ndarray:
    """Every ``[x1, y1, x2, y2]`` group of ``text`` in order, divided by ``scale``: a float64 array of shape (n, 4).

    Overflowing numbers ("1e999") become inf and so invalid boxes (see the module docstring); nothing raises on text.
    """
    scale = _check_scale(scale)
    if not isinstance(text, str) or "[" not in text:
        return np.zeros((0, 4))
    groups = BOX_PATTERN.findall(text)
    if not groups:
        return np.zeros((0, 4))
    boxes = np.array(groups, dtype=np.float64)  # numpy parses each numeric string like float()
    return boxes / scale if scale != 1.0 else boxes


def parse_boxes_flat(texts: Iterable[str | None], scale: float = RADVLM_SCALE) -> tuple[np.ndarray, np.ndarray]:
    """The boxes of a batch of texts in one array: ``(boxes (N, 4), counts (B,))``, text ``b`` owning ``counts[b]`` rows.

    One numeric conversion for the whole batch instead of one per text: a GRPO step parses thousands of answers.
    """
    scale = _check_scale(scale)
    groups: list[tuple[str, ...]] = []
    counts = []
    for text in texts:
        found = BOX_PATTERN.findall(text) if isinstance(text, str) and "[" in text else ()
        groups.extend(found)
        counts.append(len(found))
    boxes = np.array(groups, dtype=np.float64).reshape(-1, 4)
    return (boxes / scale if scale != 1.0 else boxes), np.array(counts, dtype=np.int64)


def parse_boxes_batch(texts: Iterable[str | None], scale: float = RADVLM_SCALE) -> list[np.ndarray]:
    """``parse_boxes`` over a batch (one array per text)."""
    boxes, counts = parse_boxes_flat(texts, scale)
    return np.split(boxes, np.cumsum(counts)[:-1]) if len(counts) else []


def undo_float32_storage(values: np.ndarray) -> np.ndarray:
    """Values that went through float32 storage, read back as the decimals that were written (float64).

    A dataset column of float32 (the GRPO schema's ``boxes`` before it became float64, or any dataset cast so) gives
    back 0.3499999940395355 for a written 0.35, so an exact answer scored 0.99999995 instead of 1. A finite value that
    is exactly a float32 becomes the decimal with the fewest digits after the point (up to 12) that float32 rounds to
    the same value; every other value is kept. A float64 value that happens to be a float32 moves by less than float32's
    rounding (6e-8 relative), far below any box precision.
    """
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        as32 = values.astype(np.float32)
        todo = np.isfinite(values) & (as32.astype(np.float64) == values)
    out = values.copy()
    for decimals in range(FLOAT32_MAX_DECIMALS + 1):
        if not todo.any():
            break
        with np.errstate(over="ignore", invalid="ignore"):
            candidate = np.round(values, decimals)
            hit = todo & (candidate.astype(np.float32) == as32)
        out[hit] = candidate[hit]
        todo &= ~hit
    return out


def as_boxes(boxes: object, scale: float = RADVLM_SCALE) -> np.ndarray:
    """Ground truth given as numbers (a list of boxes, an array) as a float64 (n, 4) array divided by ``scale``.

    ``None`` and empty inputs give an empty set. Values that went through float32 storage are read back as written
    (``undo_float32_storage``). A wrong shape is a data error and raises: unlike model output, ground truth is ours
    to get right.
    """
    scale = _check_scale(scale)
    if boxes is None:
        return np.zeros((0, 4))
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 4))
    if array.ndim == 1 and array.shape[0] == 4:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"Boxes must have shape (n, 4) as [[x1, y1, x2, y2], ...]; got shape {array.shape}.")
    array = undo_float32_storage(array)
    return array / scale if scale != 1.0 else array


def valid_mask(boxes: np.ndarray) -> np.ndarray:
    """The module's validity rule, per row: finite, inside [0, 1] (1e-6 tolerance), positive width and height."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(boxes).all(axis=1)
        in_range = ((boxes >= -RANGE_TOLERANCE) & (boxes <= 1.0 + RANGE_TOLERANCE)).all(axis=1)
        ordered = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return finite & in_range & ordered
