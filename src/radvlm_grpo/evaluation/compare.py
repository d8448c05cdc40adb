"""Side-by-side comparison of evaluated checkpoints (the demo's SFT vs GRPO table) and GRPO reward curves."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from radvlm_grpo.data.schema import REPORT_GENERATION
from radvlm_grpo.evaluation.grounding_metrics import ALL_GROUNDING

# (benchmark in metrics.json, metric, label, digits)
COMPARED = (
    (ALL_GROUNDING, "soft_f1", "grounding soft-F1", 3),
    (ALL_GROUNDING, "map_50", "grounding mAP@0.5", 3),
    (ALL_GROUNDING, "avg_iou", "grounding average IoU", 3),
    (REPORT_GENERATION, "gleu", "report GLEU", 3),
    (REPORT_GENERATION, "bleu", "report BLEU-4", 3),
    (REPORT_GENERATION, "rouge_l", "report ROUGE-L", 3),
    (REPORT_GENERATION, "avg_chars", "mean report length (characters)", 1),
)


def merged_metrics(paths: Sequence[str | Path]) -> dict:
    """The ``metrics`` blocks of several ``metrics.json`` files in one dict (e.g. a grounding and a report model)."""
    merged: dict = {}
    for path in paths:
        for benchmark, values in json.loads(Path(path).read_text())["metrics"].items():
            merged.setdefault(benchmark, {}).update(values)
    return merged


def metric_value(metrics: Mapping, benchmark: str, name: str) -> float | None:
    entry = metrics.get(benchmark, {}).get(name)
    return None if entry is None else entry["value"]


def comparison_table(columns: Mapping[str, Mapping]) -> str:
    """Markdown: one row per compared metric, one column per model, each cell ``value [95% interval]``."""
    labels = list(columns)
    lines = ["| metric | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for benchmark, name, label, digits in COMPARED:
        cells = []
        for metrics in columns.values():
            entry = metrics.get(benchmark, {}).get(name)
            cells.append(
                "–"
                if entry is None
                else f"{entry['value']:.{digits}f} [{entry['low']:.{digits}f}, {entry['high']:.{digits}f}]"
            )
        if any(cell != "–" for cell in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def reward_history(trainer_state: str | Path, reward: str) -> tuple[list[int], list[float]]:
    history = json.loads(Path(trainer_state).read_text())["log_history"]
    key = f"rewards/{reward}/mean"
    points = [(log["step"], log[key]) for log in history if key in log]
    return [s for s, _ in points], [v for _, v in points]


def plot_reward_curves(runs: Mapping[str, tuple[str | Path, str]], path: str | Path) -> Path:
    """One panel per run: the mean reward per logged step (``runs``: label -> (trainer_state.json, reward name))."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.5), squeeze=False)
    for axis, (label, (state, reward)) in zip(axes[0], runs.items()):
        steps, values = reward_history(state, reward)
        axis.plot(steps, values, marker="o", markersize=3)
        axis.set_title(label)
        axis.set_xlabel("GRPO step")
        axis.set_ylabel(f"mean {reward} reward")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
