"""Evaluation figures, drawn with matplotlib's Agg canvas (no display, no pyplot global state).

Three figures go into the output folder and the model card: per-condition CheXbert F1 (when CheXbert ran), predicted
and true boxes on a few test images, and the length distribution of generated and reference reports (length collapse
is the reward hack of the paper's Table 3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

TRUE_COLOR, PRED_COLOR = "#2ca02c", "#d62728"
NO_BOX = "no box predicted"


def _finite(boxes) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    return boxes[np.isfinite(boxes).all(axis=1)]


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Render on an Agg canvas (no display, no pyplot state) and write the PNG, making its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    return path


def plot_chexbert_per_condition(per_condition: Mapping[str, Mapping[str, float]], path: str | Path) -> Path:
    """Horizontal bars of F1 per CheXbert condition, with the reference support in the labels."""
    names = list(per_condition)
    f1 = [per_condition[n]["f1"] * 100 for n in names]
    figure = Figure(figsize=(6, 0.35 * len(names) + 1))
    ax = figure.add_subplot()
    bars = ax.barh(range(len(names)), f1, color="#1f77b4")
    # Every bar carries its value: a condition at F1 0 is otherwise an empty row, indistinguishable from a missing one.
    ax.bar_label(bars, labels=[f"{v:.1f}" for v in f1], padding=2, fontsize=7)
    ax.set_yticks(range(len(names)), [f"{n} (n={per_condition[n]['support']})" for n in names])
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("CheXbert F1 (%)")
    ax.set_title("Report generation: F1 per condition")
    return save_figure(figure, path)


def plot_boxes(
    samples: Sequence[tuple[object, np.ndarray, np.ndarray, str]], path: str | Path, columns: int = 3
) -> Path:
    """Images with true (green, solid) and predicted (red, dashed) boxes; ``(image, pred, true, title)`` each.

    Boxes are ``[x1, y1, x2, y2]`` normalised to [0, 1]; invalid predicted boxes are drawn as far as they fit. A panel
    whose answer has no box says "no box predicted", so that it does not read as a prediction hidden under the truth.
    """
    rows = max(1, -(-len(samples) // columns))
    figure = Figure(figsize=(3 * columns, 3.2 * rows))
    for k, (image, pred, true, title) in enumerate(samples):
        ax = figure.add_subplot(rows, columns, k + 1)
        pixels = np.asarray(image.convert("RGB")) if hasattr(image, "convert") else np.asarray(image)
        height, width = pixels.shape[:2]
        ax.imshow(pixels, cmap="gray")
        for boxes, color, style in ((true, TRUE_COLOR, "-"), (pred, PRED_COLOR, "--")):
            for x1, y1, x2, y2 in _finite(boxes):
                ax.add_patch(
                    Rectangle(
                        (x1 * width, y1 * height),
                        (x2 - x1) * width,
                        (y2 - y1) * height,
                        fill=False,
                        edgecolor=color,
                        linestyle=style,
                        linewidth=1.5,
                    )
                )
        if not len(_finite(pred)):
            ax.text(
                0.5,
                0.04,
                NO_BOX,
                transform=ax.transAxes,
                ha="center",
                va="bottom",
                fontsize=8,
                color="white",
                bbox={"facecolor": PRED_COLOR, "edgecolor": "none", "alpha": 0.8, "pad": 2},
            )
        ax.set_title(title, fontsize=8)
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        ax.axis("off")
    figure.suptitle("Grounding: true boxes (green) and predicted boxes (red, dashed)", fontsize=10)
    return save_figure(figure, path)


def plot_report_lengths(predictions: Sequence[str], references: Sequence[str], path: str | Path) -> Path:
    """Histograms of answer and reference lengths in characters, with their means."""
    pred_len = np.array([len(p) for p in predictions])
    ref_len = np.array([len(r) for r in references])
    figure = Figure(figsize=(6, 3.5))
    ax = figure.add_subplot()
    top = max(int(pred_len.max(initial=0)), int(ref_len.max(initial=0)), 1)
    bins = np.linspace(0, top, 30)
    ax.hist(ref_len, bins=bins, alpha=0.6, label=f"reference (mean {ref_len.mean() if len(ref_len) else 0:.0f})")
    ax.hist(pred_len, bins=bins, alpha=0.6, label=f"generated (mean {pred_len.mean() if len(pred_len) else 0:.0f})")
    ax.set_xlabel("report length (characters)")
    ax.set_ylabel("reports")
    ax.set_title("Report length distribution")
    ax.legend()
    return save_figure(figure, path)
