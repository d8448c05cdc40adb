"""Model and dataset cards, rendered from the Jinja templates in ``model_cards/`` with huggingface_hub's card classes.

TRL's own card is text-only (a text-generation pipeline snippet), which is wrong for an image-text-to-text model, so
the scripts write this card over it after saving. ``scripts/evaluate.py`` then merges its results into the section
between two markers (``radvlm_grpo.evaluation.card.apply_evaluation``), replaced on every new evaluation. Cards never hold a Hub token: they
are rendered from the fields below only.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import transformers
import trl
from huggingface_hub import DatasetCard, DatasetCardData, ModelCard, ModelCardData

STAGES = {
    "sft": "supervised fine-tuning on chest X-ray instructions (report generation, grounding, classification, "
    "conversation), RadVLM stage 1",
    "cold_start": "cold-start 'thinking' SFT on teacher reasoning traces mixed with direct answers, RadVLM stage 2",
    "grpo": "GRPO reinforcement learning with clinically grounded rewards, RadVLM-GRPO stage 3",
}


EVALUATION_START = "<!-- radvlm-grpo:evaluation:start -->"
EVALUATION_END = "<!-- radvlm-grpo:evaluation:end -->"


def templates_dir() -> Path:
    """``model_cards/`` of the checkout (or ``RADVLM_MODEL_CARDS_DIR``): the recipes run from a clone, like open-r1."""
    configured = os.environ.get("RADVLM_MODEL_CARDS_DIR")
    path = Path(configured) if configured else Path(__file__).resolve().parents[3] / "model_cards"
    if not (path / "model_card.md").is_file():
        raise FileNotFoundError(
            f"No model card template at {path / 'model_card.md'}. Run from a clone of the repository or set "
            "RADVLM_MODEL_CARDS_DIR to its model_cards/ folder."
        )
    return path


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


def is_hub_id(name: str | None) -> bool:
    return bool(name) and not Path(name).exists() and name.count("/") == 1 and not name.startswith((".", "/", "~"))


def _format_metric(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) and math.isfinite(value) else str(value)


def not_evaluated_block(model_id: str) -> str:
    """The evaluation section of a card before any evaluation: how to evaluate, between the markers that
    ``radvlm_grpo.evaluation.card.apply_evaluation`` replaces."""
    body = (
        "Not evaluated yet. Evaluate this checkpoint with\n`python scripts/evaluate.py --model_name_or_path "
        f"{model_id} --dataset_name <test set> --output_dir <folder>`: the results appear here, in this card "
        "when the model is a local folder (and in `<folder>/model_card.md`), on the Hub with `--push_to_hub`."
    )
    return f"{EVALUATION_START}\n{body}\n{EVALUATION_END}"


# ---------------------------------------------------------------------------------------------------------------------
# Model cards
# ---------------------------------------------------------------------------------------------------------------------


def render_model_card(info: CardInfo) -> ModelCard:
    if info.stage is not None and info.stage not in STAGES:
        raise ValueError(f"Unknown stage {info.stage!r}; expected one of {sorted(STAGES)}.")
    # Local paths (the tiny model, data on disk) are not Hub ids: the metadata only names Hub repos.
    base_model = info.base_model if is_hub_id(info.base_model) else None
    card_data = ModelCardData(
        base_model=base_model,
        datasets=[d for d in info.datasets if is_hub_id(d)] or None,
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
        evaluation_block=not_evaluated_block(info.model_id),
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
