"""Model cards for every checkpoint the recipes produce, rendered from the Jinja templates in ``model_cards/``.

TRL's own card is text-only (a text-generation pipeline snippet), which is wrong for an image-text-to-text model, so
the scripts write this card over it after saving.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import transformers
import trl
from huggingface_hub import ModelCard, ModelCardData

STAGES = {
    "sft": "supervised fine-tuning on chest X-ray instructions (report generation, grounding, classification, "
    "conversation), RadVLM stage 1",
    "cold_start": "cold-start 'thinking' SFT on teacher reasoning traces mixed with direct answers, RadVLM stage 2",
    "grpo": "GRPO reinforcement learning with clinically grounded rewards, RadVLM-GRPO stage 3",
}


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
class CardInfo:
    """What a card says about one checkpoint."""

    model_id: str
    stage: str
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


def _is_hub_id(name: str | None) -> bool:
    return bool(name) and not Path(name).exists() and name.count("/") == 1 and not name.startswith((".", "/", "~"))


def _format_metric(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) and math.isfinite(value) else str(value)


def render_model_card(info: CardInfo) -> ModelCard:
    if info.stage not in STAGES:
        raise ValueError(f"Unknown stage {info.stage!r}; expected one of {sorted(STAGES)}.")
    # Local paths (the tiny model, data on disk) are not Hub ids: the metadata only names Hub repos.
    base_model = info.base_model if _is_hub_id(info.base_model) else None
    card_data = ModelCardData(
        base_model=base_model,
        datasets=[d for d in info.datasets if _is_hub_id(d)] or None,
        library_name="transformers",
        pipeline_tag="image-text-to-text",
        license="apache-2.0",
        tags=sorted({"radvlm-grpo", "chest-x-ray", "radiology", "trl", info.stage, *info.tags}),
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(templates_dir() / "model_card.md"),
        model_name=info.model_id.rsplit("/", 1)[-1],
        model_id=info.model_id,
        stage=info.stage,
        stage_description=STAGES[info.stage],
        base_model=info.base_model,
        base_model_url=f"https://huggingface.co/{base_model}" if base_model else None,
        datasets=info.datasets,
        metrics={k: _format_metric(v) for k, v in info.metrics.items()},
        recipe_path=info.recipe_path,
        recipe_text=(info.recipe_text or "# recipe not recorded").strip(),
        overrides=info.overrides,
        thinking=info.thinking,
        is_demo=info.is_demo,
        max_new_tokens=info.max_new_tokens,
        trl_version=trl.__version__,
        transformers_version=transformers.__version__,
    )


def write_model_card(output_dir: str | Path, info: CardInfo) -> Path:
    path = Path(output_dir) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    render_model_card(info).save(path)
    return path
