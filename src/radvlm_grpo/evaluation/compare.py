"""Compare runs: evaluated checkpoints side by side and GRPO reward curves, for the demo and for any runs.

    python -m radvlm_grpo.evaluation.compare RUN_A RUN_B [RUN_C ...] --output_dir OUT [--labels A B ...]

Each RUN is a folder: an evaluation output (``metrics.json``, from ``scripts/evaluate.py``) and/or a training output
(``trainer_state.json``; while a run is still going, the one of its latest ``checkpoint-*``). OUT gets
``comparison.md``: every metric of the evaluations side by side with its 95% interval, and per training run the first
and last logged value of every reward and of the completion length (a falling length next to a rising reward is the
reward hack of the paper's Table 3); and ``reward_curves.png``: one panel per reward and one for the completion
length, one line per run. The demo's own table and per-run curves (``comparison_table``, ``plot_reward_curves``) are
the fixed-metric form of the same thing.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from radvlm_grpo.cli import run_cli
from radvlm_grpo.evaluation.grounding_metrics import ALL_GROUNDING
from radvlm_grpo.vocab.schema import REPORT_GENERATION

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


def logged_series(trainer_state: str | Path, key: str) -> tuple[list[int], list[float]]:
    """Steps and values of one logged key (``rewards/soft_f1/mean``, ``completions/mean_length``...)."""
    history = json.loads(Path(trainer_state).read_text())["log_history"]
    points = [(log["step"], log[key]) for log in history if key in log]
    return [s for s, _ in points], [v for _, v in points]


def reward_history(trainer_state: str | Path, reward: str) -> tuple[list[int], list[float]]:
    return logged_series(trainer_state, f"rewards/{reward}/mean")


def smoothed(values: Sequence[float], window: int = 5) -> list[float]:
    """Centred moving average (the window shrinks at the ends), for a curve read at a glance."""
    values = list(values)
    half = window // 2
    return [
        sum(values[max(0, i - half) : i + half + 1]) / len(values[max(0, i - half) : i + half + 1])
        for i in range(len(values))
    ]


def plot_reward_curves(runs: Mapping[str, tuple[str | Path, str]], path: str | Path) -> Path:
    """One panel per run (``runs``: label -> (trainer_state.json, reward name)): every logged step's mean reward
    (points), a smoothed line, and a band of the within-group spread (TRL's ``reward_std``, the mean over groups of
    the reward's standard deviation among one prompt's completions: what GRPO's advantages are made of)."""
    from matplotlib.figure import Figure

    from radvlm_grpo.evaluation.figures import save_figure

    figure = Figure(figsize=(5 * len(runs), 3.5))
    for k, (label, (state, reward)) in enumerate(runs.items()):
        axis = figure.add_subplot(1, len(runs), k + 1)
        steps, values = reward_history(state, reward)
        spread_steps, spread = logged_series(state, "reward_std")
        line = smoothed(values)
        if spread_steps == steps and len(spread) == len(values):
            low = [m - s for m, s in zip(line, smoothed(spread))]
            high = [m + s for m, s in zip(line, smoothed(spread))]
            axis.fill_between(steps, low, high, alpha=0.2, label="± within-group std")
        axis.plot(steps, values, "o", markersize=3, alpha=0.6, label="mean per step")
        axis.plot(steps, line, "-", linewidth=2, label="smoothed (5 steps)")
        axis.set_title(label)
        axis.set_xlabel("GRPO step")
        axis.set_ylabel(f"{reward} reward")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_paired_chart(panels: Mapping[str, Mapping[str, tuple[float, float, float]]], path: str | Path) -> Path:
    """One panel per held-out metric: a bar per model with its 95% interval (``panels``: metric -> {model: (value,
    low, high)}); the first model of each panel (SFT) is the reference the others are compared with."""
    from matplotlib.figure import Figure

    from radvlm_grpo.evaluation.figures import save_figure

    figure = Figure(figsize=(4 * len(panels), 3.5))
    for k, (metric, bars) in enumerate(panels.items()):
        axis = figure.add_subplot(1, len(panels), k + 1)
        labels = list(bars)
        values = [bars[k][0] for k in labels]
        errors = [[bars[k][0] - bars[k][1] for k in labels], [bars[k][2] - bars[k][0] for k in labels]]
        axis.bar(
            range(len(labels)), values, yerr=errors, capsize=4, color=["#888888"] + ["#1f77b4"] * (len(labels) - 1)
        )
        for x, value in enumerate(values):
            axis.annotate(
                f"{value:.3f}",
                (x, value),
                ha="center",
                va="bottom",
                fontsize=8,
                xytext=(8, 2),
                textcoords="offset points",
            )
        axis.set_xticks(range(len(labels)), labels, fontsize=8)
        axis.set_title(metric, fontsize=10)
        axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return save_figure(figure, path)


# ---------------------------------------------------------------------------------------------------------------------
# Any runs: the command line
# ---------------------------------------------------------------------------------------------------------------------

METRICS_FILE, STATE_FILE = "metrics.json", "trainer_state.json"
LENGTH_KEY = "completions/mean_length"
_REWARD_KEY = re.compile(r"^rewards/(.+)/mean$")


@dataclass
class Run:
    """One compared folder: its evaluation (``metrics.json`` content) and/or its training log (``trainer_state.json``)."""

    label: str
    folder: Path
    metrics: dict | None = None
    trainer_state: Path | None = None


def find_trainer_state(folder: Path) -> Path | None:
    """``trainer_state.json`` of a training folder: the final one, else the latest checkpoint's (a run in progress)."""
    if (folder / STATE_FILE).is_file():
        return folder / STATE_FILE
    checkpoints = [p for p in folder.glob(f"checkpoint-*/{STATE_FILE}") if p.parent.name.split("-")[-1].isdigit()]
    return max(checkpoints, key=lambda p: int(p.parent.name.split("-")[-1]), default=None)


def _labels(folders: Sequence[Path]) -> list[str]:
    """Folder names, or their last two path parts when two folders share a name (``a/eval`` and ``b/eval``)."""
    names = [f.name for f in folders]
    if len(set(names)) == len(names):
        return names
    return ["/".join(f.parts[-2:]) for f in folders]


def load_runs(paths: Sequence[str | Path], labels: Sequence[str] | None = None) -> list[Run]:
    """The runs to compare; a folder with neither ``metrics.json`` nor a ``trainer_state.json`` is an error."""
    folders = [Path(p).expanduser() for p in paths]
    if labels and len(labels) != len(folders):
        raise ValueError(f"{len(labels)} --labels for {len(folders)} runs; give one label per run, or none.")
    runs = []
    for folder, label in zip(folders, labels or _labels(folders)):
        metrics_path = folder / METRICS_FILE
        run = Run(
            label=label,
            folder=folder,
            metrics=json.loads(metrics_path.read_text()) if metrics_path.is_file() else None,
            trainer_state=find_trainer_state(folder),
        )
        if run.metrics is None and run.trainer_state is None:
            raise FileNotFoundError(
                f"{folder} holds neither {METRICS_FILE} (an evaluation output folder of scripts/evaluate.py) nor "
                f"{STATE_FILE} (a training output folder of scripts/grpo.py or scripts/sft.py, or one of its "
                "checkpoint-* folders): pass such folders."
            )
        runs.append(run)
    return runs


def logged_rewards(states: Sequence[str | Path]) -> list[str]:
    """The reward names logged in any of the training logs, in order of first appearance."""
    names: list[str] = []
    for state in states:
        for log in json.loads(Path(state).read_text())["log_history"]:
            names += [m[1] for key in log if (m := _REWARD_KEY.match(key)) and m[1] not in names]
    return names


def evaluations_markdown(runs: Sequence[Run]) -> str:
    """Every metric of the evaluated runs side by side (an out-of-distribution test set as its own column)."""
    from radvlm_grpo.evaluation.tables import side_by_side_markdown

    columns, datasets = {}, {}
    for run in runs:
        if run.metrics is None:
            continue
        columns[run.label], datasets[run.label] = run.metrics["metrics"], run.metrics["dataset"]
        ood = run.metrics.get("out_of_distribution")
        if ood:
            name = f"{run.label}, out of distribution"
            columns[name], datasets[name] = ood["metrics"], ood["dataset"]
    if not columns:
        return ""
    parts = ["## Evaluations (95% bootstrap intervals)\n", side_by_side_markdown(columns, datasets)]
    tested = {(r.metrics["dataset"], r.metrics.get("dataset_config"), r.metrics["split"]) for r in runs if r.metrics}
    if len(tested) > 1:
        parts.append(
            "The evaluations are on different test sets: compare their numbers only where the data is the same.\n"
        )
    return "\n".join(parts)


def _first_last(state: Path, key: str) -> str:
    steps, values = logged_series(state, key)
    if not values:
        return "–"
    return f"{values[0]:.4g} → {values[-1]:.4g} (steps {steps[0]}-{steps[-1]})"


def training_markdown(runs: Sequence[Run]) -> str:
    """First and last logged value of every reward and of the completion length, per training run."""
    trained = [r for r in runs if r.trainer_state is not None]
    if not trained:
        return ""
    keys = [f"rewards/{name}/mean" for name in logged_rewards([r.trainer_state for r in trained])] + [LENGTH_KEY]
    lines = ["| logged | " + " | ".join(r.label for r in trained) + " |", "|---|" + "---|" * len(trained)]
    for key in keys:
        cells = [_first_last(r.trainer_state, key) for r in trained]
        if any(cell != "–" for cell in cells):
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "## Training (first → last logged value)\n\n" + "\n".join(lines) + "\n"


def plot_reward_comparison(states: Mapping[str, str | Path], path: str | Path) -> Path:
    """One panel per logged reward and one for the completion length; one line per run (label -> trainer state)."""
    from matplotlib.figure import Figure

    from radvlm_grpo.evaluation.figures import save_figure

    keys = [(f"rewards/{name}/mean", f"mean {name} reward") for name in logged_rewards(list(states.values()))]
    if any(logged_series(state, LENGTH_KEY)[1] for state in states.values()):
        keys.append((LENGTH_KEY, "mean completion length (tokens)"))
    if not keys:
        raise ValueError(f"No rewards/<name>/mean nor {LENGTH_KEY} logged in {', '.join(map(str, states.values()))}.")
    figure = Figure(figsize=(5 * len(keys), 3.5))
    for k, (key, title) in enumerate(keys):
        axis = figure.add_subplot(1, len(keys), k + 1)
        for label, state in states.items():
            steps, values = logged_series(state, key)
            if values:
                axis.plot(steps, values, marker="o", markersize=3, label=label)
        axis.set_title(title)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path)


def compare_runs(
    paths: Sequence[str | Path], output_dir: str | Path, labels: Sequence[str] | None = None
) -> dict[str, Path]:
    """Write ``comparison.md`` (and ``reward_curves.png`` when training logs are given) to ``output_dir``."""
    runs = load_runs(paths, labels)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    states = {r.label: r.trainer_state for r in runs if r.trainer_state is not None}
    if states:
        written["reward_curves"] = plot_reward_comparison(states, output_dir / "reward_curves.png")
    sources = "\n".join(
        f"- **{r.label}**: `{r.folder}`"
        + (f" (evaluation of `{r.metrics['model']}`)" if r.metrics else "")
        + (f" (training log `{r.trainer_state.relative_to(r.folder)}`)" if r.trainer_state else "")
        for r in runs
    )
    parts = ["# Comparison\n", sources + "\n", evaluations_markdown(runs), training_markdown(runs)]
    if "reward_curves" in written:
        parts.append("![Reward curves](reward_curves.png)\n")
    written["comparison"] = output_dir / "comparison.md"
    written["comparison"].write_text("\n".join(p for p in parts if p))
    return written


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    parser = argparse.ArgumentParser(
        prog="python -m radvlm_grpo.evaluation.compare",
        description="Compare evaluation and/or training output folders: comparison.md and reward_curves.png.",
    )
    parser.add_argument("runs", nargs="+", help="Evaluation output folders and/or training output folders.")
    parser.add_argument("--output_dir", required=True, help="Where to write comparison.md and reward_curves.png.")
    parser.add_argument("--labels", nargs="+", default=None, help="One name per run (default: the folder names).")
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error("give at least two runs to compare.")
    written = compare_runs(args.runs, args.output_dir, args.labels)
    for path in written.values():
        print(path)
    return written


if __name__ == "__main__":
    run_cli(main)
