"""Markdown tables laid out like the paper's Tables 1 and 2, with the paper's rows for comparison.

The paper's numbers are copied from arXiv:2512.10691 Tables 1 and 2 (method.md 4.3 and 4.4; the bold and underline
marks are dropped because a new row can change the ranking). Percentages are shown with one decimal, RadCliQ with
two, as in the paper. A metric that was not computed is shown as "–".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from radvlm_grpo.evaluation.grounding_metrics import ALL_GROUNDING, TABLE2_BENCHMARKS, benchmark_header
from radvlm_grpo.evaluation.provenance import weights_markdown

# (header, metric key, scale to the displayed unit, decimals). RGF1 is RadGraph-F1 "complete" (RG_ER-bar): the paper
# does not say which level Table 1 reports; its Table 3 marks the complete-level reward's own column (method.md 4.2).
TABLE1_COLUMNS = (
    ("R-L", "rouge_l", 100, 1),
    ("B-S", "bertscore", 100, 1),
    ("CXb-micro", "chexbert_micro_f1_14", 100, 1),
    ("CXb-macro", "chexbert_macro_f1_14", 100, 1),
    ("RGF1", "radgraph_complete", 100, 1),
    ("GRN", "green", 100, 1),
    ("RCQ↓", "radcliq_v1", 1, 2),
)

# Model, size in billions of parameters, then the TABLE1_COLUMNS values.
PAPER_TABLE1 = (
    ("MedGemma-pt", "4", (20.7, 47.7, 49.8, 32.5, 15.5, 21.9, 1.37)),
    ("MedGemma-it", "27", (15.9, 31.3, 47.0, 31.5, 12.0, 23.3, 1.79)),
    ("MAIRA-2", "7", (17.7, 46.6, 52.1, 35.8, 12.9, 21.3, 1.42)),
    ("CheXagent-2", "3", (22.5, 37.4, 54.5, 38.7, 20.1, 29.9, 1.45)),
    ("DeepMedix-R1", "7", (22.3, 52.8, 48.2, 28.3, 18.6, 30.0, 1.23)),
    ("LLaVA-Rad", "7", (22.2, 48.9, 53.3, 39.2, 16.8, 28.6, 1.34)),
    ("Qwen3-VL", "8", (14.0, 42.0, 35.3, 20.4, 10.8, 21.9, 1.67)),
    ("Qwen3-VL-Thinking", "8", (15.0, 43.1, 34.6, 18.5, 10.9, 18.5, 1.63)),
    ("Qwen3-VL+RL", "8", (24.7, 55.8, 47.4, 22.3, 22.5, 25.8, 1.05)),
    ("Qwen3-VL-Thinking+RL", "8", (23.3, 55.0, 44.4, 22.4, 21.0, 24.7, 1.12)),
    ("RadVLM", "8", (26.0, 53.3, 49.0, 30.5, 19.0, 29.1, 1.14)),
    ("RadVLM+RL", "8", (29.9, 59.2, 57.0, 33.4, 25.8, 32.7, 0.86)),
    ("RadVLM-Thinking+RL", "8", (30.0, 59.0, 56.3, 33.6, 25.7, 32.9, 0.87)),
)

# Model, then mAP@0.5 (%) in TABLE2_BENCHMARKS order.
PAPER_TABLE2 = (
    ("MAIRA-2", (19.8, 11.3, 80.1, 38.8)),
    ("Qwen3-VL", (11.1, 5.1, 19.0, 10.7)),
    ("Qwen3-VL-Thinking", (8.7, 1.2, 14.6, 10.7)),
    ("Qwen3-VL+RL", (79.0, 36.0, 79.4, 55.3)),
    ("Qwen3-VL-Thinking+RL", (68.8, 27.6, 76.1, 42.0)),
    ("RadVLM", (82.1, 44.2, 84.6, 59.0)),
    ("RadVLM+RL", (84.5, 45.9, 87.9, 63.0)),
    ("RadVLM-Thinking+RL", (84.9, 43.9, 86.4, 60.5)),
)

# Units of the detailed table: metrics shown as percentages, the others raw.
RAW_METRICS = {"radcliq_v1", "avg_chars"}
MISSING = "–"
# More than this share of generations cut at max_new_tokens and the tables carry a warning.
TRUNCATION_WARNING_FRACTION = 0.1
PAPER_SOURCE = "Gundersen, Deperrois et al., arXiv:2512.10691"


def _fmt(value: float | None, scale: float = 100, decimals: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value * scale:.{decimals}f}"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _header(cells: Sequence[str]) -> list[str]:
    return [_row(cells), "|" + "---|" * len(cells)]


def format_size(num_parameters: int | None) -> str:
    """Billions of parameters with 3 significant digits (8.77 for Qwen3-VL-8B; 0.00123 for the tiny model)."""
    return MISSING if not num_parameters else f"{num_parameters / 1e9:.3g}"


def truncation_warning(generation: Mapping[str, int], max_new_tokens: int | None = None) -> str | None:
    """A warning when more than 10% of the generations stopped at the token limit: their answers are cut off, so the
    scores say as much about ``max_new_tokens`` as about the model. None otherwise."""
    rows, cut = generation.get("rows", 0), generation.get("truncated", 0)
    if not rows or cut <= TRUNCATION_WARNING_FRACTION * rows:
        return None
    limit = f"max_new_tokens={max_new_tokens}" if max_new_tokens else "max_new_tokens"
    return (
        f"Warning: {cut} of {rows} generations ({100 * cut / rows:.0f}%) stopped at {limit}, so their answers are cut "
        "off and the scores measure the token limit as much as the model. Evaluate again with a larger "
        "--max_new_tokens."
    )


def warnings_markdown(warnings: Sequence[str]) -> str:
    return "".join(f"> **{warning}**\n\n" for warning in warnings)


def scorers_markdown(scorers: Mapping[str, list[dict]] | None) -> str:
    """The "Scorer weights" part: which weights produced the clinical numbers (empty when none ran)."""
    if not scorers:
        return ""
    return (
        "Scorer weights (Hub repository and commit, or local folder, and the SHA-256 of each weights file; full "
        "hashes in metrics.json):\n\n" + weights_markdown(scorers)
    )


def table1_markdown(label: str, size: str, metrics: Mapping[str, float | None], include_paper: bool = True) -> str:
    """Table 1 (report generation): the paper's rows, then ``label``'s row from point estimates in [0, 1] units."""
    lines = _header(["Model", "Size (B)", *(c[0] for c in TABLE1_COLUMNS)])
    if include_paper:
        for model, paper_size, values in PAPER_TABLE1:
            lines.append(_row([model, paper_size, *(_fmt(v, 1, d) for v, (*_, d) in zip(values, TABLE1_COLUMNS))]))
    cells = [_fmt(metrics.get(key), scale, d) for _, key, scale, d in TABLE1_COLUMNS]
    lines.append(_row([f"**{label}**", size, *cells]))
    return "\n".join(lines) + "\n"


def table2_markdown(label: str, map_by_benchmark: Mapping[str, float | None], include_paper: bool = True) -> str:
    """Table 2 (grounding mAP@0.5, %): the paper's rows, then ``label``'s row (benchmark key -> mAP in [0, 1]).

    Benchmarks outside the paper's four (other sources, synthetic data, sources not recorded; ``grounding``
    excepted) get extra columns headed by their task and source, empty in the paper's rows.
    """
    extra = [b for b in map_by_benchmark if b not in TABLE2_BENCHMARKS and b != ALL_GROUNDING]
    headers = [*TABLE2_BENCHMARKS.values(), *(benchmark_header(b) for b in extra)]
    lines = _header(["Model", *headers])
    if include_paper:
        for model, values in PAPER_TABLE2:
            lines.append(_row([model, *(_fmt(v, 1, 1) for v in values), *(MISSING for _ in extra)]))
    lines.append(_row([f"**{label}**", *(_fmt(map_by_benchmark.get(b)) for b in [*TABLE2_BENCHMARKS, *extra])]))
    return "\n".join(lines) + "\n"


def intervals_markdown(groups: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """Every metric with its bootstrap interval: ``{group: {metric: {"value", "low", "high", "n"}}}``."""
    lines = _header(["group", "metric", "value", "95% CI", "n"])
    for group, metrics in groups.items():
        for name, result in metrics.items():
            scale, decimals = (1, 3) if name in RAW_METRICS else (100, 1)
            if name == "avg_chars":
                decimals = 0
            low, high = _fmt(result["low"], scale, decimals), _fmt(result["high"], scale, decimals)
            ci = MISSING if MISSING in (low, high) else f"[{low}, {high}]"
            lines.append(_row([group, name, _fmt(result["value"], scale, decimals), ci, str(result["n"])]))
    return "\n".join(lines) + "\n"


def results_markdown(
    label: str,
    size: str,
    dataset: str,
    split: str,
    report_metrics: Mapping[str, float | None] | None,
    map_by_benchmark: Mapping[str, float | None] | None,
    intervals: Mapping[str, Mapping[str, Mapping[str, float]]],
    not_computed: Mapping[str, str] | None = None,
    n_resamples: int = 2000,
    warnings: Sequence[str] = (),
    scorers: Mapping[str, list[dict]] | None = None,
) -> str:
    """The whole ``results.md``: warnings first, Table 1 and/or 2 with the paper's rows, every metric with its
    interval, then what was not computed and the scorer weights."""
    parts = [f"# Evaluation of {label}\n", f"Test data: `{dataset}`, split `{split}`.\n"]
    if warnings:
        parts.append(warnings_markdown(warnings).rstrip() + "\n")
    note = f"Paper rows: {PAPER_SOURCE}, on RadVLM's test sets; they compare with this row only on the same test set."
    if report_metrics is not None:
        parts += [
            "## Report generation (Table 1 layout; %, RCQ raw, lower is better)\n",
            table1_markdown(label, size, report_metrics),
            note + " RGF1 is RadGraph-F1 complete; CXb are CheXbert F1 over the 14 conditions.\n",
        ]
    if map_by_benchmark is not None:
        parts += [
            "## Visual grounding (Table 2 layout; mAP@0.5, %)\n",
            table2_markdown(label, map_by_benchmark),
            note + "\n",
        ]
    parts += [
        f"## All metrics with bootstrap 95% intervals ({n_resamples} resamples; %, except RadCliQ and characters)\n",
        intervals_markdown(intervals),
    ]
    if not_computed:
        parts.append("Not computed: " + "; ".join(f"{k} ({v})" for k, v in not_computed.items()) + ".\n")
    if scorers:
        parts.append(scorers_markdown(scorers))
    return "\n".join(parts)


def _cell(result: Mapping[str, float] | None, name: str) -> str:
    if result is None:
        return MISSING
    scale, decimals = (1, 3) if name in RAW_METRICS else (100, 1)
    decimals = 0 if name == "avg_chars" else decimals
    low, high = _fmt(result["low"], scale, decimals), _fmt(result["high"], scale, decimals)
    interval = "" if MISSING in (low, high) else f" [{low}, {high}]"
    return f"{_fmt(result['value'], scale, decimals)}{interval} (n={result['n']})"


def side_by_side_markdown(
    columns: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]], datasets: Mapping[str, str]
) -> str:
    """Every metric of several evaluations side by side: ``{column: {group: {metric: interval}}}``, one row per
    (group, metric) found in any column, "–" where a column lacks it (e.g. grounding only in distribution)."""
    keys: list[tuple[str, str]] = []
    for groups in columns.values():
        keys += [(g, m) for g, metrics in groups.items() for m in metrics if (g, m) not in keys]
    lines = _header(["group", "metric", *(f"{label} (`{datasets[label]}`)" for label in columns)])
    for group, name in keys:
        cells = [_cell(groups.get(group, {}).get(name), name) for groups in columns.values()]
        lines.append(_row([group, name, *cells]))
    return "\n".join(lines) + "\n"


def out_of_distribution_markdown(
    label: str,
    size: str,
    dataset: str,
    split: str,
    report_metrics: Mapping[str, float | None] | None,
    map_by_benchmark: Mapping[str, float | None] | None,
    intervals: Mapping[str, Mapping[str, Mapping[str, float]]],
    not_computed: Mapping[str, str] | None = None,
    n_resamples: int = 2000,
    warnings: Sequence[str] = (),
) -> str:
    """The "Out of distribution" section of ``results.md``: the same tables without the paper's rows, which were
    measured on RadVLM's (MIMIC-CXR and friends) test sets and compare with nothing here."""
    parts = [
        "## Out of distribution\n",
        f"Test data outside the training distribution: `{dataset}`, split `{split}`, evaluated the same way. The "
        "paper's rows are left out: they were measured on other test sets.\n",
    ]
    if warnings:
        parts.append(warnings_markdown(warnings).rstrip() + "\n")
    if report_metrics is not None:
        parts += [
            "### Report generation (Table 1 layout; %, RCQ raw, lower is better)\n",
            table1_markdown(label, size, report_metrics, include_paper=False),
        ]
    if map_by_benchmark is not None:
        parts += [
            "### Visual grounding (Table 2 layout; mAP@0.5, %)\n",
            table2_markdown(label, map_by_benchmark, include_paper=False),
        ]
    parts += [
        f"### All metrics with bootstrap 95% intervals ({n_resamples} resamples)\n",
        intervals_markdown(intervals),
    ]
    if not_computed:
        parts.append("Not computed: " + "; ".join(f"{k} ({v})" for k, v in not_computed.items()) + ".\n")
    return "\n".join(parts)
