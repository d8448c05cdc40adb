"""Bounding boxes in RadVLM's text form: ``[x1, y1, x2, y2]`` normalised to [0, 1].

The formatter here writes exactly what RadVLM's instruction data contains (Python ``round(v, 2)``, so ``0.5`` and not
``0.50``; several boxes joined by ", " with " and " before the last), so that training data and the reward parser agree.
"""

from __future__ import annotations

from collections.abc import Sequence

Box = Sequence[float]


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
