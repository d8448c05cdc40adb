"""An evaluation's part of a model card: model-index results the Hub shows, the section with the paper-style tables
and figures (between the markers of ``radvlm_grpo.publishing.cards``), and its push into a Hub card."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import CommitOperationAdd, DatasetCard, EvalResult, HfApi, ModelCard

from radvlm_grpo.evaluation.grounding_metrics import ALL_GROUNDING, benchmark_header
from radvlm_grpo.evaluation.tables import (
    intervals_markdown,
    scorers_markdown,
    side_by_side_markdown,
    table1_markdown,
    table2_markdown,
    warnings_markdown,
)
from radvlm_grpo.publishing.cards import (
    EVALUATION_END,
    EVALUATION_START,
    CardInfo,
    is_hub_id,
    render_model_card,
)
from radvlm_grpo.publishing.hub import load_hub_card

logger = logging.getLogger(__name__)

# Metric key -> display name in model-index metadata and on the Hub's evaluation widget.
METRIC_NAMES = {
    "rouge_l": "ROUGE-L",
    "bleu": "BLEU-4",
    "gleu": "GLEU",
    "avg_chars": "Average characters",
    "bertscore": "BERTScore",
    "chexbert_micro_f1_14": "CheXbert micro-F1 (14)",
    "chexbert_macro_f1_14": "CheXbert macro-F1 (14)",
    "chexbert_micro_f1_5": "CheXbert micro-F1 (5)",
    "chexbert_macro_f1_5": "CheXbert macro-F1 (5)",
    "radgraph_simple": "RadGraph-F1 simple",
    "radgraph_partial": "RadGraph-F1 partial",
    "radgraph_complete": "RadGraph-F1 complete",
    "radcliq_v1": "RadCliQ-v1 (lower is better)",
    "green": "GREEN",
    "map_50": "mAP@0.5",
    "avg_iou": "Average IoU",
    "soft_f1": "Soft-F1",
}
RAW_METRICS = ("radcliq_v1", "avg_chars")  # metadata values in their own units; every other metric in %


@dataclass
class EvaluationSummary:
    """What a card says about one evaluation (``scripts/evaluate.py`` fills it).

    ``intervals`` maps a group (``report_generation`` or a grounding benchmark) to ``{metric: {"value", "low",
    "high", "n"}}`` in [0, 1] units (RadCliQ and characters raw); ``figures`` maps a figure name to its path relative
    to the card.
    """

    label: str
    dataset: str
    split: str
    n: int
    intervals: dict[str, dict[str, dict]]
    size: str = "–"
    report_metrics: dict[str, float] | None = None
    map_by_benchmark: dict[str, float] | None = None
    not_computed: dict[str, str] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)
    command: str | None = None
    recipe_text: str | None = None
    n_resamples: int = 2000
    out_of_distribution: EvaluationSummary | None = None  # a second test set outside the training distribution
    warnings: list[str] = field(default_factory=list)  # shown above the tables (e.g. answers cut at the token limit)
    scorers: dict[str, list[dict]] = field(default_factory=dict)  # the clinical scorers' weights (provenance)
    # Held-out grounding rows shown beside the tables: {"figure" (a name in ``figures``), "task", "question",
    # "reference", "answer", "soft_f1"}; their images are the figures named "example_<k>".
    examples: list[dict] = field(default_factory=list)


def _task_name(group: str) -> str:
    if group == "report_generation":
        return "Radiology report generation"
    if group == ALL_GROUNDING:
        return "Visual grounding: all grounding rows"
    return f"Visual grounding: {benchmark_header(group)}"


LOCAL_DATASET = "local"  # model-index dataset type of a test set that is a local folder, not a Hub dataset


def dataset_identity(dataset: str) -> tuple[str, str]:
    """The model-index dataset ``type`` and pretty name of a test set.

    ``type`` must be a Hub dataset id: a Hub id is its own; a local folder has none, so it is "local" and the name
    says which folder (the pretty name of its dataset card when it, or its parent for a ``grpo``/``sft`` subfolder,
    has one) rather than passing a folder name off as a dataset id.
    """
    if is_hub_id(dataset):
        return dataset, dataset.rsplit("/", 1)[-1]
    folder = Path(dataset).expanduser()
    for candidate in (folder, folder.parent):
        card = candidate / "README.md"
        if card.is_file():
            pretty = DatasetCard.load(card).data.get("pretty_name")
            if pretty:
                return LOCAL_DATASET, f"{pretty} (local folder)"
    return LOCAL_DATASET, f"{'/'.join(folder.parts[-2:])} (local folder)"


OOD_SUFFIX = " (out of distribution)"


def eval_results(summary: EvaluationSummary, ood: bool = False) -> list[EvalResult]:
    """model-index entries: one per (group, metric), values as the tables show them (% except RadCliQ, characters).

    An out-of-distribution test set adds its own entries, its groups marked " (out of distribution)".
    """
    dataset_type, dataset_name = dataset_identity(summary.dataset)
    results = []
    for group, metrics in summary.intervals.items():
        for name, interval in metrics.items():
            value = interval["value"]
            if value is None or not math.isfinite(value):
                continue
            shown = round(value, 4) if name in RAW_METRICS else round(100 * value, 2)
            results.append(
                EvalResult(
                    task_type="image-text-to-text",
                    task_name=_task_name(group) + (OOD_SUFFIX if ood else ""),
                    dataset_type=dataset_type,
                    dataset_name=f"{dataset_name}, {summary.split}",
                    dataset_config=group + (OOD_SUFFIX if ood else ""),
                    dataset_split=summary.split,
                    metric_type=name,
                    metric_name=METRIC_NAMES.get(name, name),
                    metric_value=shown,
                )
            )
    if summary.out_of_distribution is not None and not ood:
        results += eval_results(summary.out_of_distribution, ood=True)
    return results


def _result_key(result: EvalResult) -> tuple:
    # The name too: every local test set shares the dataset type "local".
    return (
        result.task_type,
        result.dataset_type,
        result.dataset_name,
        result.dataset_config,
        result.dataset_split,
        result.metric_type,
    )


EXAMPLE_PREFIX = "example_"
EXAMPLE_MAX_CHARS = 300


def _cell(text: object, limit: int = EXAMPLE_MAX_CHARS) -> str:
    """Text for one markdown table cell: one line, pipes escaped, cut to ``limit`` characters."""
    text = " ".join(str(text or "").split())
    text = text if len(text) <= limit else text[: limit - 3].rstrip() + "..."
    return text.replace("|", "\\|") or "(empty)"


def examples_markdown(examples: list[dict], figures: dict[str, str], heading: str = "Held-out examples") -> str:
    """A table of held-out grounding rows: the image with its boxes, the question, the reference and the answer."""
    lines = [
        f"#### {heading}",
        "",
        "Reference boxes in green (`ref`), predicted boxes in red (`pred`, numbered in the answer's order when there "
        "are several); the first rows of each grounding test set in turn.",
        "",
        "| image | question | reference | answer |",
        "|---|---|---|---|",
    ]
    for k, example in enumerate(examples, start=1):
        path = figures.get(example["figure"])
        image = f"![example {k}]({path})" if path else "–"
        score = example.get("soft_f1")
        answer = _cell(example.get("answer")) + (f" (soft-F1 {score:.2f})" if score is not None else "")
        question = f"**{_cell(example.get('task'), 60)}**: {_cell(example.get('question'))}"
        lines.append(f"| {image} | {question} | {_cell(example.get('reference'))} | {answer} |")
    return "\n".join(lines)


def _plain_figures(figures: dict[str, str]) -> dict[str, str]:
    """The figures shown on their own (the examples' images are shown in their table)."""
    return {name: path for name, path in figures.items() if not name.startswith(EXAMPLE_PREFIX)}


def evaluation_markdown(summary: EvaluationSummary) -> str:
    """The card's evaluation section: paper-style tables, every metric with its interval, the figures."""
    parts = [
        f"Evaluated on `{summary.dataset}`, split `{summary.split}` ({summary.n} rows)"
        + (f" with `{summary.command}`." if summary.command else "."),
        "The paper's rows (arXiv:2512.10691, on RadVLM's test sets) are shown for comparison; they compare with this "
        "model's row only on the same test set.",
    ]
    if summary.warnings:
        parts.append(warnings_markdown(summary.warnings).rstrip())
    if summary.report_metrics is not None:
        parts += [
            "### Report generation (%, RadCliQ raw, lower is better)",
            table1_markdown(summary.label, summary.size, summary.report_metrics).rstrip(),
        ]
    if summary.map_by_benchmark is not None:
        parts += [
            "### Visual grounding (mAP@0.5, %)",
            table2_markdown(summary.label, summary.map_by_benchmark).rstrip(),
        ]
        if summary.examples:
            parts.append(examples_markdown(summary.examples, summary.figures))
    parts += [
        f"### All metrics with bootstrap 95% intervals ({summary.n_resamples} resamples)",
        intervals_markdown(summary.intervals).rstrip(),
    ]
    if summary.not_computed:
        parts.append("Not computed: " + "; ".join(f"{k} ({v})" for k, v in summary.not_computed.items()) + ".")
    if summary.scorers:
        parts.append(scorers_markdown(summary.scorers).rstrip())
    titles = {
        "chexbert_per_condition": "CheXbert F1 per condition",
        "grounding_boxes": "Predicted and true boxes",
        "report_lengths": "Report lengths",
    }
    parts += [f"![{titles.get(name, name)}]({path})" for name, path in _plain_figures(summary.figures).items()]
    if summary.out_of_distribution is not None:
        parts += _ood_parts(summary, summary.out_of_distribution)
    if summary.recipe_text:
        parts += ["Evaluation settings:", f"```yaml\n{summary.recipe_text.strip()}\n```"]
    return "\n\n".join(parts)


def _ood_parts(summary: EvaluationSummary, ood: EvaluationSummary) -> list[str]:
    """The out-of-distribution figures beside the in-distribution ones: one row per metric, both columns."""
    parts = [
        "### Out of distribution",
        f"Also evaluated, the same way, on `{ood.dataset}`, split `{ood.split}` ({ood.n} rows), a test set outside "
        "the training distribution (another hospital, population, report style or view). The gap between the two "
        "columns shows how far the in-distribution figures carry beyond the training data.",
        *([warnings_markdown(ood.warnings).rstrip()] if ood.warnings else []),
        side_by_side_markdown(
            {"in distribution": summary.intervals, "out of distribution": ood.intervals},
            {"in distribution": summary.dataset, "out of distribution": ood.dataset},
        ).rstrip(),
    ]
    if ood.not_computed:
        parts.append(
            "Not computed (out of distribution): " + "; ".join(f"{k} ({v})" for k, v in ood.not_computed.items()) + "."
        )
    if ood.examples:
        parts.append(examples_markdown(ood.examples, ood.figures, "Held-out examples (out of distribution)"))
    parts += [f"![{name} (out of distribution)]({path})" for name, path in _plain_figures(ood.figures).items()]
    return parts


def evaluation_block(summary: EvaluationSummary) -> str:
    """The card's evaluation section between its markers."""
    return f"{EVALUATION_START}\n{evaluation_markdown(summary)}\n{EVALUATION_END}"


def apply_evaluation(card: ModelCard, summary: EvaluationSummary) -> ModelCard:
    """Merge an evaluation into a card: model-index results (replacing those of the same task, data and metric) and
    the evaluation section (between the markers; added before "Intended use" in a card that has none)."""
    new = eval_results(summary)
    keys = {_result_key(r) for r in new}
    kept = [r for r in (card.data.eval_results or []) if _result_key(r) not in keys]
    card.data.eval_results = kept + new
    card.data.model_name = card.data.model_name or summary.label
    block = evaluation_block(summary)
    text = card.text
    pattern = re.compile(re.escape(EVALUATION_START) + ".*?" + re.escape(EVALUATION_END), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        section = f"## Evaluation\n\n{block}\n\n"
        anchor = text.find("## Intended use")
        text = text[:anchor] + section + text[anchor:] if anchor >= 0 else text.rstrip() + "\n\n" + section
    card.text = text
    return card


def push_evaluation(
    repo_id: str,
    summary: EvaluationSummary,
    files: Mapping[str, str | Path],
    revision: str | None = None,
    api: HfApi | None = None,
) -> str:
    """Merge ``summary`` into the repo's card and commit it with ``files`` (path in repo -> local file) at once.

    The repo must exist (push the checkpoint first); a repo without a card gets a new one.
    """
    api = api or HfApi()
    card = load_hub_card(repo_id, revision, api) or render_model_card(CardInfo(model_id=repo_id, stage=None))
    card = apply_evaluation(card, summary)
    operations = [CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=str(card).encode())]
    operations += [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(f)) for p, f in sorted(files.items())]
    logger.info(f"Pushing the evaluation ({len(operations)} files) to {repo_id}")
    commit = api.create_commit(
        repo_id,
        operations,
        commit_message=f"Add evaluation on {Path(summary.dataset).name} ({summary.split}) by radvlm-grpo",
        repo_type="model",
        revision=revision,
    )
    return str(commit)
