"""Recipe dataclasses and the recipe parser shared by every script.

A recipe is one flat YAML mixing the fields of the script's dataclass, TRL's trainer config and TRL's ``ModelConfig``,
as in open-r1. ``parse_recipe`` adds what ``TrlParser`` lacks: a positional YAML path
(``accelerate launch scripts/sft.py recipes/demo/sft.yaml``) and a record of the recipe text for the model card.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trl
import yaml

from radvlm_grpo.cli import UserError, check_flags, check_recipe_keys, make_parser, one_line
from radvlm_grpo.scorers.precision import check_scorer_dtype
from radvlm_grpo.vocab.schema import ALL_TASKS


@dataclass
class ScriptArguments(trl.ScriptArguments):
    """Data arguments shared by the SFT and GRPO scripts.

    Args:
        tasks: Keep only rows whose ``task`` column is one of these (all rows when empty).
        task_weights: Share of each of ``tasks`` in the training split (``data.loading.mix_tasks``), e.g. a joint run.
        image_min_pixels: Lower bound on an image's pixel count after the processor's resize.
        image_max_pixels: Upper bound on an image's pixel count (RadVLM-GRPO: 262,144 in SFT, 451,584 in RL).
        max_train_samples: Use only the first N training rows (quick runs and debugging).
        max_eval_samples: Use only the first N evaluation rows.
    """

    tasks: list[str] = field(
        default_factory=list,
        metadata={"help": f"Keep only rows of these tasks (all when empty). Known tasks: {', '.join(ALL_TASKS)}."},
    )
    task_weights: list[float] = field(
        default_factory=list,
        metadata={
            "help": "Share of each task of `tasks` in the training split, in the same order (empty: the source's own "
            "proportions). The scarcest task sets the size."
        },
    )
    image_min_pixels: int | None = field(
        default=None, metadata={"help": "Minimum pixel count per image (the processor's size['shortest_edge'])."}
    )
    image_max_pixels: int | None = field(
        default=None,
        metadata={"help": "Maximum pixel count per image (the processor's size['longest_edge']), e.g. 451584."},
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Truncate the training split to N rows."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Truncate the evaluation split to N rows."})

    def __post_init__(self) -> None:
        unknown = sorted(set(self.tasks) - set(ALL_TASKS))
        if unknown:
            raise ValueError(f"Unknown task(s) {unknown} in `tasks`; known tasks: {list(ALL_TASKS)}.")
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"`tasks` names a task twice: {self.tasks}.")
        if self.task_weights and len(self.task_weights) != len(self.tasks):
            raise ValueError(
                f"task_weights has {len(self.task_weights)} values for {len(self.tasks)} tasks: give one per task in "
                "`tasks`, in the same order."
            )
        if self.image_min_pixels and self.image_max_pixels and self.image_min_pixels > self.image_max_pixels:
            raise ValueError(
                f"image_min_pixels ({self.image_min_pixels}) is larger than image_max_pixels ({self.image_max_pixels})."
            )


@dataclass
class SFTScriptArguments(ScriptArguments):
    """Arguments of ``scripts/sft.py`` beyond TRL's ``SFTConfig`` and ``ModelConfig``.

    Args:
        mix_dataset_name: A second SFT dataset mixed into the training split (the cold-start SFT mixes thinking
            traces with direct-answer RadVLM data).
        mix_dataset_config: Its configuration or subfolder.
        mix_ratio: Rows drawn from the mix dataset per training row (1.0 = as many direct answers as traces).
        stage: The stage the model card names ("sft" or "cold_start").
    """

    mix_dataset_name: str | None = field(
        default=None, metadata={"help": "Second SFT dataset mixed into training (e.g. direct-answer data)."}
    )
    mix_dataset_config: str | None = field(default=None, metadata={"help": "Configuration of the mix dataset."})
    mix_ratio: float = field(default=1.0, metadata={"help": "Mix-dataset rows per training row."})
    stage: str = field(default="sft", metadata={"help": "Stage named on the model card: sft or cold_start."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mix_ratio < 0:
            raise ValueError(f"mix_ratio must be >= 0, got {self.mix_ratio}.")
        if self.stage not in ("sft", "cold_start"):
            raise ValueError(f"stage must be 'sft' or 'cold_start', got {self.stage!r}.")


def with_positional_config(argv: Sequence[str]) -> list[str]:
    """``script.py recipe.yaml --lr 1`` -> ``script.py --config recipe.yaml --lr 1`` (TrlParser only reads --config)."""
    argv = list(argv)
    if argv and argv[0].endswith((".yaml", ".yml")) and not argv[0].startswith("-"):
        return ["--config", *argv]
    return argv


@dataclass
class Recipe:
    """Where the run's settings came from, kept for the model card and the output folder."""

    path: str | None
    text: str | None
    overrides: list[str]


def read_recipe(path: str) -> dict:
    """The recipe's settings; a missing file or one that is not a YAML mapping is a ``UserError`` naming the fix."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"Recipe {path!r} does not exist (give a YAML path, e.g. recipes/demo/sft.yaml).")
    try:
        settings = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as error:
        raise UserError(f"Recipe {path} is not valid YAML: {one_line(error)}") from error
    if not isinstance(settings, dict):
        raise UserError(f"Recipe {path} must be a YAML mapping of `field: value` lines.")
    return settings


# transformers 5 renamed gradient checkpointing; TRL still defaults (and documents) the old names.
_RENAMED_FLAGS = {
    "--gradient_checkpointing": "--activation_checkpointing",
    "--gradient-checkpointing": "--activation_checkpointing",
    "--gradient_checkpointing_kwargs": "--activation_checkpointing_kwargs",
    "--gradient-checkpointing-kwargs": "--activation_checkpointing_kwargs",
}
# Keys that TRL or transformers renamed: difflib alone would suggest something unrelated.
RENAMED_KEYS = {
    "max_seq_length": "max_length",
    "torch_dtype": "dtype",
    "evaluation_strategy": "eval_strategy",
}


def _renamed_flags(args: Sequence[str]) -> list[str]:
    """Command-line ``--gradient_checkpointing*`` as ``--activation_checkpointing*``: transformers ignores the old
    name when a recipe sets the new one, so an override written the old way would silently do nothing."""
    renamed = []
    for arg in args:
        flag, sep, value = arg.partition("=")
        if flag == "--no_gradient_checkpointing":
            renamed += ["--activation_checkpointing", "false"]
        else:
            renamed.append(_RENAMED_FLAGS.get(flag, flag) + sep + value)
    return renamed


def _prefer_activation_checkpointing(parser, recipe_keys: Iterable[str]) -> None:
    """Give TRL's ``gradient_checkpointing`` default to ``activation_checkpointing`` (its transformers 5 name).

    TRL defaults the deprecated name to True, so every run that set neither name warned that it is deprecated. A
    recipe with both names is refused: transformers ignores the old one without a word.
    """
    recipe_keys = set(recipe_keys)
    if {"gradient_checkpointing", "activation_checkpointing"} <= recipe_keys:
        raise UserError(
            "The recipe sets both activation_checkpointing and its deprecated alias gradient_checkpointing, and "
            "transformers ignores the alias when both are set: keep only activation_checkpointing."
        )
    # argparse fills a destination from its first action's default ("--no_gradient_checkpointing" comes second).
    old = [action for action in parser._actions if action.dest == "gradient_checkpointing"]
    new = [action for action in parser._actions if action.dest == "activation_checkpointing"]
    if not old or not new or "gradient_checkpointing" in recipe_keys:
        return
    if new[0].default is None and old[0].default is not None:
        new[0].default = old[0].default
        for action in old:
            action.default = None


def parse_recipe(
    dataclass_types: Sequence[type],
    argv: Sequence[str] | None = None,
    *,
    description: str | None = None,
    usage: str | None = None,
    require_recipe: bool = False,
) -> tuple:
    """Parse a recipe into the given dataclasses; returns ``(*dataclasses, Recipe)``.

    Unknown YAML keys and options raise a ``UserError`` naming the closest field, so a misspelt key or a recipe
    written for another TRL version fails before training starts. ``description`` and ``usage`` open ``--help``;
    with ``require_recipe``, a command line without a recipe prints the usage and asks for one.
    """
    args = _renamed_flags(with_positional_config(sys.argv[1:] if argv is None else argv))
    parser = make_parser(dataclass_types, description, usage, parser_class=trl.TrlParser)
    if "--config" in args and args.index("--config") == len(args) - 1:
        raise UserError("--config needs a recipe path, e.g. --config recipes/demo/sft.yaml.")
    recipe_path = args[args.index("--config") + 1] if "--config" in args else None
    wants_help = "-h" in args or "--help" in args
    if recipe_path is None and require_recipe and not wants_help:
        parser.print_usage(sys.stderr)
        raise UserError(
            "No recipe given: pass a recipe YAML first (recipes/README.md lists them), then any overrides."
        )
    overrides = [a for i, a in enumerate(args) if a != "--config" and (i == 0 or args[i - 1] != "--config")]
    settings = read_recipe(recipe_path) if recipe_path is not None else {}
    if not wants_help:
        keys = [key for key in settings if key != "env"]
        check_recipe_keys(keys, dataclass_types, f"recipe {recipe_path}", renamed=RENAMED_KEYS)
        check_flags(overrides, parser)
    _prefer_activation_checkpointing(parser, settings)
    parsed = parser.parse_args_and_config(args)
    text = Path(recipe_path).read_text() if recipe_path else None
    return (*parsed, Recipe(path=recipe_path, text=text, overrides=overrides))


@dataclass
class GRPOScriptArguments(ScriptArguments):
    """Arguments of ``scripts/grpo.py`` beyond TRL's ``GRPOConfig`` and ``ModelConfig``.

    Args:
        reward_funcs: Reward names from ``radvlm_grpo.rewards`` (or dotted import paths), weighted by TRL's
            ``reward_weights``. Each reward scores the rows of its own tasks and skips the others, so one
            multi-task dataset can carry a report reward and a grounding reward.
        thinking: Completions reason inside ``<think>...</think>``: rewards score the answer after it and apply
            the paper's penalty when ``</think>`` is missing.
        think_suffix: Append " /think" to every question (RadVLM-Thinking's trigger; Qwen3-VL-Thinking needs none).
        report_prompt: Replace the question of report-generation rows (e.g. the Qwen3-VL baseline prompt).
        system_prompt: Optional system message before every prompt (RadVLM-GRPO uses none).
        box_scale: Coordinate scale of boxes in completions: 1 for RadVLM's [0, 1] boxes, 1000 for Qwen3-VL's grid.
        soft_f1_variant: "paper" (2 * sum IoU / (n_pred + n_true), Fig. 1) or "dev" (the authors' development code).
        radgraph_model, scorer_device, scorer_weights_dir, scorer_batch_size, scorer_cache_size: the clinical
            rewards' scorers (RadGraph, BERTScore, CheXbert), which run in the training process.
        report_max_chars: Characters of a report the clinical rewards read (answer and reference; paper: 2048).
        validation_steps, validation_samples, validation_max_new_tokens: validation during training
            (``radvlm_grpo.training.validation``): greedy answers on a fixed subset of the evaluation split every N
            optimizer steps (the paper: every 20 RL steps, 128 prompts).
        scorer_dtype: "float32" (exact, default), "tf32" or "bfloat16" for the rewards' CheXbert and BERTScore
            (RadGraph stays float32; ``radvlm_grpo.scorers.precision``). Evaluation always scores in float32.
    """

    reward_funcs: list[str] = field(
        default_factory=lambda: ["soft_f1"],
        metadata={"help": "Reward names (see radvlm_grpo.rewards.REWARD_REGISTRY) or dotted import paths."},
    )
    thinking: bool = field(
        default=False, metadata={"help": "Score the answer after </think>; penalise completions without it."}
    )
    think_suffix: bool = field(default=False, metadata={"help": "Append ' /think' to every question."})
    report_prompt: str | None = field(
        default=None, metadata={"help": "Replace the question of report-generation rows with this prompt."}
    )
    system_prompt: str | None = field(default=None, metadata={"help": "System message before every prompt."})
    box_scale: float = field(
        default=1.0, metadata={"help": "Box coordinate scale in completions: 1 (RadVLM, [0, 1]) or 1000 (Qwen3-VL)."}
    )
    soft_f1_variant: str = field(
        default="paper", metadata={"help": "soft-F1 form: 'paper' (Fig. 1, default) or 'dev' (authors' dev code)."}
    )
    radgraph_model: str = field(
        default="radgraph-xl", metadata={"help": "RadGraph of the clinical rewards: radgraph-xl (paper) or radgraph."}
    )
    scorer_device: str | None = field(
        default=None,
        metadata={"help": "Device of the clinical scorers (default: this process's GPU when there is one, else CPU)."},
    )
    scorer_weights_dir: str | None = field(
        default=None,
        metadata={"help": "Local folder with the scorer weights; default: StanfordAIMI/RRG_scorers from the Hub."},
    )
    scorer_batch_size: int | None = field(
        default=None, metadata={"help": "Reports per scorer forward pass (default: the scorers' own)."}
    )
    scorer_cache_size: int | None = field(
        default=None, metadata={"help": "Reference reports whose features stay cached (default: the scorers' own)."}
    )
    report_max_chars: int | None = field(
        default=None,
        metadata={"help": "Characters of each report the clinical rewards read (default 2048, as the paper's code)."},
    )
    validation_steps: int = field(
        default=0,
        metadata={
            "help": "Validate every N optimizer steps: greedy answers on a fixed held-out subset, task metrics logged "
            "as validation/* (0: off, no cost)."
        },
    )
    validation_samples: int = field(
        default=128, metadata={"help": "Rows of the evaluation split in the validation subset (paper: 128)."}
    )
    validation_max_new_tokens: int | None = field(
        default=None, metadata={"help": "Most tokens per validation answer (default: max_completion_length)."}
    )
    finding_f1_empty: float | None = field(
        default=None,
        metadata={"help": "Demo finding_f1 reward: score when neither report states a finding (default 0)."},
    )
    scorer_dtype: str = field(
        default="float32",
        metadata={
            "help": "Precision of the rewards' CheXbert and BERTScore: float32 (exact, default), tf32 (CUDA) or "
            "bfloat16; RadGraph stays float32. Faster, not exact; evaluation always uses float32."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.reward_funcs:
            raise ValueError("reward_funcs is empty: name at least one reward, e.g. [soft_f1].")
        if self.soft_f1_variant not in ("paper", "dev"):
            raise ValueError(f"soft_f1_variant must be 'paper' or 'dev', got {self.soft_f1_variant!r}.")
        check_scorer_dtype(self.scorer_dtype)
        if self.box_scale <= 0:
            raise ValueError(f"box_scale must be positive, got {self.box_scale}.")
        if self.validation_steps < 0 or self.validation_samples <= 0:
            raise ValueError(
                f"validation_steps must be >= 0 (0: off) and validation_samples > 0; got {self.validation_steps} and "
                f"{self.validation_samples}."
            )
