"""What a synthetic chest X-ray holds: its drawn findings (pixels, boxes, words) and the boxes of its anatomical
regions. ``synthetic`` draws scenes; ``synthetic_tasks`` writes their reports and rows."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from radvlm_grpo.vocab.boxes import Box


def mask_box(mask: np.ndarray) -> Box | None:
    """Tight box of a mask on the 0.01 grid (floor the start, ceil the end), so it always covers every pixel.

    Integer arithmetic keeps the values exact: ``k / 100`` prints with two decimals at most.
    """
    rows, cols = mask.any(axis=1), mask.any(axis=0)
    if not rows.any():
        return None
    (h, w), r0, c0 = mask.shape, int(rows.argmax()), int(cols.argmax())
    r1, c1 = h - int(rows[::-1].argmax()), w - int(cols[::-1].argmax())
    return [(100 * c0 // w) / 100, (100 * r0 // h) / 100, -(-100 * c1 // w) / 100, -(-100 * r1 // h) / 100]


@dataclass
class Finding:
    """One drawn finding: ``label`` is its abnormality-grounding name (None for devices); ``masks`` are the pixels
    drawn, one mask per box (two for bilateral effusions), and ``boxes`` their tight boxes."""

    kind: str
    label: str | None
    phrase: str
    sentence: str
    masks: list[np.ndarray] = field(repr=False, compare=False)
    side: str | None = None
    zone: str | None = None
    boxes: list[Box] = field(init=False)

    def __post_init__(self) -> None:
        self.boxes = [mask_box(m) for m in self.masks]


@dataclass
class Scene:
    """An image (H x W uint8 grey levels) with its findings and the boxes of its anatomical regions."""

    image: np.ndarray
    findings: list[Finding]
    regions: dict[str, Box]
