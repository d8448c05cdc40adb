"""Model and dataset cards, rendered from the Jinja templates in ``model_cards/`` with huggingface_hub's card classes.

TRL's own card is text-only (a text-generation pipeline snippet), which is wrong for an image-text-to-text model, so
the scripts write this card over it after saving. ``scripts/evaluate.py`` then merges its results into a card
(``apply_evaluation``): model-index metadata that the Hub shows as evaluation results, and a section between two
markers with the paper-style tables and figures, replaced on every new evaluation. Cards never hold a Hub token: they
are rendered from the fields below only.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import transformers
import trl
from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, ModelCard, ModelCardData

STAGES = {
    "sft": "supervised fine-tuning on chest X-ray instructions (report generation, grounding, classification, "
    "conversation), RadVLM stage 1",
    "cold_start": "cold-start 'thinking' SFT on teacher reasoning traces mixed with direct answers, RadVLM stage 2",
    "grpo": "GRPO reinforcement learning with clinically grounded rewards, RadVLM-GRPO stage 3",
}


EVALUATION_START = "<!-- radvlm-grpo:evaluation:start -->"
EVALUATION_END = "<!-- radvlm-grpo:evaluation:end -->"
EVALUATION_TOOL = "radvlm-grpo scripts/evaluate.py"

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


def templates_dir() -> Path:
    """``model_cards/`` of the checkout (or ``RADVLM_MODEL_CARDS_DIR``): the recipes run from a clone, like open-r1."""
    configured = os.environ.get("RADVLM_MODEL_CARDS_DIR")
    path = Path(configured) if configured else Path(__file__).resolve().parents[2] / "model_cards"
    if not (path / "model_card.md").is_file():
        raise FileNotFoundError(
            f"No model card template at {path / 'model_card.md'}. Run from a clone of the repository or set "
            "RADVLM_MODEL_CARDS_DIR to its model_cards/ folder."
        )
    return path


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


@dataclass
class CardInfo:
    """What a card says about one checkpoint. ``stage`` None: trained elsewhere (a card made only for evaluation)."""

    model_id: str
    stage: str | None
    base_model: str | None = None
    datasets: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    recipe_path: str | None = None
    recipe_text: str | None = None
    overrides: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    thinking: bool = False
    is_demo: bool = False
    max_new_tokens: int = 1024
    evaluation: EvaluationSummary | None = None


def _is_hub_id(name: str | None) -> bool:
    return bool(name) and not Path(name).exists() and name.count("/") == 1 and not name.startswith((".", "/", "~"))


def _format_metric(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) and math.isfinite(value) else str(value)


# ---------------------------------------------------------------------------------------------------------------------
# Evaluation results
# ---------------------------------------------------------------------------------------------------------------------


def _task_name(group: str) -> str:
    from radvlm_grpo.evaluation.grounding_metrics import ALL_GROUNDING, benchmark_header

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
    if _is_hub_id(dataset):
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


def evaluation_markdown(summary: EvaluationSummary) -> str:
    """The card's evaluation section: paper-style tables, every metric with its interval, the figures."""
    from radvlm_grpo.evaluation.tables import (
        intervals_markdown,
        scorers_markdown,
        table1_markdown,
        table2_markdown,
        warnings_markdown,
    )

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
    parts += [f"![{titles.get(name, name)}]({path})" for name, path in summary.figures.items()]
    if summary.out_of_distribution is not None:
        parts += _ood_parts(summary, summary.out_of_distribution)
    if summary.recipe_text:
        parts += ["Evaluation settings:", f"```yaml\n{summary.recipe_text.strip()}\n```"]
    return "\n\n".join(parts)


def _ood_parts(summary: EvaluationSummary, ood: EvaluationSummary) -> list[str]:
    """The out-of-distribution figures beside the in-distribution ones: one row per metric, both columns."""
    from radvlm_grpo.evaluation.tables import side_by_side_markdown, warnings_markdown

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
    parts += [f"![{name} (out of distribution)]({path})" for name, path in ood.figures.items()]
    return parts


def _evaluation_block(summary: EvaluationSummary | None, model_id: str) -> str:
    if summary is None:
        body = (
            "Not evaluated yet. Evaluate this checkpoint with\n`python scripts/evaluate.py --model_name_or_path "
            f"{model_id} --dataset_name <test set> --output_dir <folder>`: the results appear here, in this card "
            "when the model is a local folder (and in `<folder>/model_card.md`), on the Hub with `--push_to_hub`."
        )
    else:
        body = evaluation_markdown(summary)
    return f"{EVALUATION_START}\n{body}\n{EVALUATION_END}"


def apply_evaluation(card: ModelCard, summary: EvaluationSummary) -> ModelCard:
    """Merge an evaluation into a card: model-index results (replacing those of the same task, data and metric) and
    the evaluation section (between the markers; added before "Intended use" in a card that has none)."""
    new = eval_results(summary)
    keys = {_result_key(r) for r in new}
    kept = [r for r in (card.data.eval_results or []) if _result_key(r) not in keys]
    card.data.eval_results = kept + new
    card.data.model_name = card.data.model_name or summary.label
    block = _evaluation_block(summary, summary.label)
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


# ---------------------------------------------------------------------------------------------------------------------
# Model cards
# ---------------------------------------------------------------------------------------------------------------------


def render_model_card(info: CardInfo) -> ModelCard:
    if info.stage is not None and info.stage not in STAGES:
        raise ValueError(f"Unknown stage {info.stage!r}; expected one of {sorted(STAGES)}.")
    # Local paths (the tiny model, data on disk) are not Hub ids: the metadata only names Hub repos.
    base_model = info.base_model if _is_hub_id(info.base_model) else None
    card_data = ModelCardData(
        base_model=base_model,
        datasets=[d for d in info.datasets if _is_hub_id(d)] or None,
        library_name="transformers",
        pipeline_tag="image-text-to-text",
        license="apache-2.0",
        tags=sorted(
            {
                "radvlm-grpo",
                "chest-x-ray",
                "radiology",
                "medical",
                "trl",
                *([info.stage] if info.stage else []),
                *info.tags,
            }
        ),
    )
    if info.evaluation is not None:
        card_data.model_name = info.model_id.rsplit("/", 1)[-1]
        card_data.eval_results = eval_results(info.evaluation)
    return ModelCard.from_template(
        card_data,
        template_path=str(templates_dir() / "model_card.md"),
        model_name=info.model_id.rsplit("/", 1)[-1],
        model_id=info.model_id,
        stage=info.stage,
        stage_description=STAGES.get(info.stage, "not recorded (a checkpoint trained elsewhere)"),
        base_model=info.base_model,
        base_model_url=f"https://huggingface.co/{base_model}" if base_model else None,
        datasets=info.datasets,
        metrics={k: _format_metric(v) for k, v in info.metrics.items()},
        recipe_path=info.recipe_path,
        recipe_text=(info.recipe_text or "").strip() or None,
        overrides=info.overrides,
        thinking=info.thinking,
        is_demo=info.is_demo,
        max_new_tokens=info.max_new_tokens,
        evaluation_block=_evaluation_block(info.evaluation, info.model_id),
        trl_version=trl.__version__,
        transformers_version=transformers.__version__,
    )


def write_model_card(output_dir: str | Path, info: CardInfo) -> Path:
    path = Path(output_dir) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    render_model_card(info).save(path)
    return path


# ---------------------------------------------------------------------------------------------------------------------
# Dataset cards
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class DatasetCardInfo:
    """What a dataset card says. ``credentialed`` lists the access-controlled sources the rows derive from."""

    repo_id: str
    schema: str  # "grpo" or "sft"
    splits: dict[str, int]
    tasks: dict[str, int] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    credentialed: dict[str, str] = field(default_factory=dict)  # source -> how access is granted
    gated: bool = False
    build_command: str | None = None
    description: str | None = None
    license: str | None = None
    terms: dict[str, str] = field(default_factory=dict)  # public source -> its licence and terms of use


def size_category(rows: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if rows < limit:
            return name
    return "1M<n<10M" if rows < 10_000_000 else "n>10M"


def render_dataset_card(info: DatasetCardInfo) -> DatasetCard:
    """A dataset card: the schema, splits and tasks, the sources and their access terms, the gate when credentialed."""
    if info.schema not in ("grpo", "sft"):
        raise ValueError(f"Unknown schema {info.schema!r}; expected 'grpo' or 'sft'.")
    license_ = info.license or ("other" if info.credentialed or not info.sources else "apache-2.0")
    extra = {"license_name": "source-data-use-agreements"} if license_ == "other" else {}
    if info.gated:
        extra |= {
            "extra_gated_prompt": (
                "These rows derive from access-controlled chest X-ray data ("
                + ", ".join(info.credentialed or {"unknown sources": ""})
                + "). Request access only if you hold the credentials and signed the data use agreements of every "
                "source; do not redistribute the data."
            ),
            "extra_gated_fields": {
                "I hold the credentials and data use agreements for every source dataset": "checkbox",
                "Affiliation": "text",
            },
        }
    card_data = DatasetCardData(
        pretty_name=info.repo_id.rsplit("/", 1)[-1],
        license=license_,
        task_categories=["image-text-to-text"],
        language=["en"],
        size_categories=[size_category(sum(info.splits.values()))],
        tags=["radvlm-grpo", "chest-x-ray", "radiology", "medical"],
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": split, "path": f"data/{split}-*.parquet"} for split in info.splits],
            }
        ],
        **extra,
    )
    return DatasetCard.from_template(
        card_data,
        template_path=str(templates_dir() / "dataset_card.md"),
        name=info.repo_id.rsplit("/", 1)[-1],
        repo_id=info.repo_id,
        schema=info.schema,
        splits=info.splits,
        tasks=info.tasks,
        sources=info.sources,
        credentialed=info.credentialed,
        gated=info.gated,
        build_command=info.build_command,
        description=info.description,
        terms=info.terms,
    )
