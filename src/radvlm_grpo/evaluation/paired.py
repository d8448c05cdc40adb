"""Paired comparisons: two evaluations scored on the same held-out rows, and a training curve's first against its last
steps, each with a bootstrap 95% interval of the difference.

"GRPO beats SFT" is a claim about one difference on the same rows; two separate intervals that overlap say little
about it. ``paired_difference`` resamples the rows once per replicate and takes both models' means on that same
resample, so the interval is of the difference itself. Reports of the synthetic data also get the demo's clinical
statistics (``report_statistics``): micro finding-F1, the share of answers equal to the normal template and the mean
length, with the finding-F1 difference paired the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radvlm_grpo.data.synthetic_tasks import NORMAL_REPORT
from radvlm_grpo.evaluation.bootstrap import N_RESAMPLES, SEED, resample_indices
from radvlm_grpo.rewards.demo import finding_counts, read_findings
from radvlm_grpo.vocab.schema import GROUNDING_TASKS, REPORT_GENERATION

SAMPLES_FILE = "samples.jsonl"


@dataclass
class Difference:
    """``b - a`` on the same rows: both values, the difference and its bootstrap 95% interval."""

    a: float
    b: float
    delta: float
    low: float
    high: float
    n: int

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{self.delta:+.4f} [{self.low:+.4f}, {self.high:+.4f}]"


def read_samples(evaluation_dir: str | Path) -> dict[str, dict]:
    """``scripts/evaluate.py``'s per-row ``samples.jsonl``, by row id."""
    path = Path(evaluation_dir) / SAMPLES_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"No {SAMPLES_FILE} in {evaluation_dir}: run scripts/evaluate.py with --output_dir there."
        )
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {row["id"]: row for row in rows}


def _paired_rows(a: dict[str, dict], b: dict[str, dict], tasks: Sequence[str]) -> list[str]:
    ids = sorted(i for i in a.keys() & b.keys() if a[i].get("task") in tasks)
    if not ids:
        raise ValueError(f"The two evaluations share no row of task(s) {list(tasks)}.")
    return ids


def _difference(
    statistic: Callable[[np.ndarray], float], n: int, a_values, b_values, n_resamples: int, seed: int
) -> Difference:
    a_value, b_value = statistic(a_values), statistic(b_values)
    deltas = [
        statistic(b_values[idx]) - statistic(a_values[idx])
        for chunk in resample_indices(n, n_resamples, seed)
        for idx in chunk
    ]
    low, high = np.percentile(deltas, [2.5, 97.5])
    return Difference(a_value, b_value, b_value - a_value, float(low), float(high), n)


def paired_difference(
    a_dir: str | Path,
    b_dir: str | Path,
    metric: str = "soft_f1",
    tasks: Sequence[str] = GROUNDING_TASKS,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> Difference:
    """Mean per-row ``metric`` of evaluation ``b`` minus that of ``a`` over the rows both scored (of ``tasks``)."""
    a, b = read_samples(a_dir), read_samples(b_dir)
    ids = _paired_rows(a, b, tasks)
    a_values = np.array([a[i][metric] for i in ids], dtype=np.float64)
    b_values = np.array([b[i][metric] for i in ids], dtype=np.float64)
    return _difference(np.mean, len(ids), a_values, b_values, n_resamples, seed)


def paired_mean_difference(
    a_values: Sequence[float], b_values: Sequence[float], n_resamples: int = N_RESAMPLES, seed: int = SEED
) -> Difference:
    """Mean of ``b_values`` minus mean of ``a_values``, two measurements of the same rows (in the same order)."""
    a, b = np.asarray(a_values, dtype=np.float64), np.asarray(b_values, dtype=np.float64)
    if a.shape != b.shape or not len(a):
        raise ValueError(f"Paired values need the same, non-zero number of rows; got {len(a)} and {len(b)}.")
    return _difference(np.mean, len(a), a, b, n_resamples, seed)


@dataclass
class ReportStatistics:
    """What the demo says of one model's synthetic reports."""

    finding_f1: float  # micro over findings
    template_share: float  # answers equal to the normal template
    mean_chars: float
    n: int


def _micro_f1(counts: np.ndarray) -> float:
    tp, fp, fn = counts.sum(axis=0)
    return float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 0.0


def _finding_counts(row: dict) -> tuple[int, int, int]:
    return finding_counts(read_findings(row.get("answer") or ""), read_findings(row["reference"]))


def report_statistics(evaluation_dir: str | Path) -> ReportStatistics:
    """Micro finding-F1, template share and mean length of an evaluation's synthetic report rows."""
    rows = [row for row in read_samples(evaluation_dir).values() if row.get("task") == REPORT_GENERATION]
    if not rows:
        raise ValueError(f"{evaluation_dir} has no report-generation rows.")
    answers = [(row.get("answer") or "").strip() for row in rows]
    counts = np.array([_finding_counts(row) for row in rows], dtype=np.float64)
    return ReportStatistics(
        finding_f1=_micro_f1(counts),
        template_share=float(np.mean([answer == NORMAL_REPORT for answer in answers])),
        mean_chars=float(np.mean([len(answer) for answer in answers])),
        n=len(rows),
    )


def paired_finding_f1(
    a_dir: str | Path, b_dir: str | Path, n_resamples: int = N_RESAMPLES, seed: int = SEED
) -> Difference:
    """Micro finding-F1 of ``b``'s reports minus ``a``'s, rows resampled together (the micro F1 recomputed)."""
    a, b = read_samples(a_dir), read_samples(b_dir)
    ids = _paired_rows(a, b, [REPORT_GENERATION])
    a_counts = np.array([_finding_counts(a[i]) for i in ids], dtype=np.float64)
    b_counts = np.array([_finding_counts(b[i]) for i in ids], dtype=np.float64)
    return _difference(_micro_f1, len(ids), a_counts, b_counts, n_resamples, seed)


def window_difference(
    values: Sequence[float], fraction: float = 0.2, n_resamples: int = N_RESAMPLES, seed: int = SEED
) -> Difference:
    """Mean of the last ``fraction`` of a curve's logged values minus that of the first, with a bootstrap interval
    (each window's values resampled on their own): did the training reward rise? ``n`` is the number of values."""
    values = np.asarray(values, dtype=np.float64)
    k = max(1, int(round(fraction * len(values))))
    if len(values) < 2 * k:
        raise ValueError(f"{len(values)} logged values are too few to compare the first and last {k}.")
    first, last = values[:k], values[-k:]
    rng = np.random.default_rng(seed)
    deltas = [rng.choice(last, k).mean() - rng.choice(first, k).mean() for _ in range(n_resamples)]
    low, high = np.percentile(deltas, [2.5, 97.5])
    return Difference(
        float(first.mean()), float(last.mean()), float(last.mean() - first.mean()), low, high, len(values)
    )
