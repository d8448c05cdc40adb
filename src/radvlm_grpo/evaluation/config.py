"""The settings of ``scripts/evaluate.py``: one dataclass, so a YAML file and command-line flags both work.

Sampling lives in ``generation.SamplingSettings``, parsed next to this one. The paper's per-model settings
(method.md 4.2): greedy with ``--max_new_tokens 1024`` for RadVLM, RadVLM+RL and Qwen3-VL-Instruct(+RL) (the defaults);
``--thinking --max_new_tokens 4096`` (greedy) for RadVLM-Thinking+RL, with ``--think_suffix`` on its questions;
``--thinking --temperature 1.0 --max_new_tokens 4096`` for Qwen3-VL-8B-Thinking and its RL version; Qwen3-VL's own
boxes are on a 0-1000 grid (``--box_scale 1000``); images at most 451,584 pixels (``--image_max_pixels 451584``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from radvlm_grpo.evaluation.clinical import CLINICAL_METRICS
from radvlm_grpo.metrics.thinking import FIRST, LAST
from radvlm_grpo.vocab.prompts import QWEN3VL_BASELINE_REPORT_PROMPT
from radvlm_grpo.vocab.schema import GRPO_TASKS

BACKENDS = ("auto", "vllm", "transformers")


def _is_hub_id(name: str) -> bool:
    return not Path(name).exists() and name.count("/") == 1 and not name.startswith((".", "/", "~"))


@dataclass
class EvaluationArguments:
    """What to evaluate, on which data, how to generate and what to score."""

    # Model
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Hub id or local folder of the checkpoint to evaluate."}
    )
    model_revision: str | None = field(default=None, metadata={"help": "Branch, tag or commit of a Hub checkpoint."})
    model_label: str | None = field(
        default=None, metadata={"help": "Row name in the tables and the card (default: the model's name)."}
    )
    model_size: str | None = field(
        default=None, metadata={"help": "'Size (B)' cell of Table 1 (default: counted from the loaded weights)."}
    )
    dtype: str = field(
        default="auto", metadata={"help": "Weights dtype for the transformers backend: auto, bfloat16..."}
    )
    # Data
    dataset_name: str | None = field(
        default=None, metadata={"help": "Hub id or local folder of a dataset in the GRPO schema (prompt/image/...)."}
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Dataset config (or local subfolder)."})
    split: str = field(default="test", metadata={"help": "Split to evaluate."})
    tasks: list[str] = field(
        default_factory=list,
        metadata={"help": f"Tasks to evaluate (all of {', '.join(GRPO_TASKS)} present when empty)."},
    )
    max_samples: int | None = field(
        default=None, metadata={"help": "Evaluate only the first N rows of each test set (quick checks)."}
    )
    # Out-of-distribution test set
    ood_dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "A second test set outside the training distribution (GRPO schema, e.g. data/public/openi for a "
            "MIMIC-trained model), evaluated the same way and reported apart under 'Out of distribution'."
        },
    )
    ood_dataset_config: str | None = field(
        default=None, metadata={"help": "Its config or local subfolder (default: 'grpo' when the folder has one)."}
    )
    ood_split: str = field(default="test", metadata={"help": "Split of the out-of-distribution test set."})
    ood_tasks: list[str] = field(
        default_factory=list,
        metadata={"help": "Tasks to evaluate on the out-of-distribution set (all GRPO tasks it has when empty)."},
    )
    image_min_pixels: int | None = field(default=None, metadata={"help": "Minimum pixels per image after resizing."})
    image_max_pixels: int | None = field(
        default=None, metadata={"help": "Maximum pixels per image after resizing (RadVLM-GRPO evaluation: 451584)."}
    )
    # Prompts and answers
    thinking: bool = field(
        default=False, metadata={"help": "The model thinks in <think>...</think>: score the answer after it."}
    )
    think_suffix: bool = field(
        default=False, metadata={"help": "Append ' /think' to every question (RadVLM-Thinking)."}
    )
    report_prompt: str | None = field(
        default=None,
        metadata={"help": "Replace the report question; 'qwen3vl_baseline' gives the paper's stock Qwen3-VL prompt."},
    )
    system_prompt: str | None = field(default=None, metadata={"help": "System message before every prompt."})
    report_think_occurrence: str = field(
        default=LAST, metadata={"help": "Reports: answer after the 'last' (paper) or 'first' </think>."}
    )
    grounding_think_occurrence: str = field(
        default=FIRST, metadata={"help": "Grounding: answer after the 'first' (as the reward) or 'last' </think>."}
    )
    box_scale: float = field(
        default=1.0, metadata={"help": "Box coordinate scale in answers: 1 (RadVLM, [0, 1]) or 1000 (Qwen3-VL)."}
    )
    # Generation
    backend: str = field(
        default="auto", metadata={"help": "auto (vLLM on a GPU when installed), vllm or transformers."}
    )
    batch_size: int | None = field(
        default=None, metadata={"help": "Rows per generate call and per resume point (default 8; 256 with vLLM)."}
    )
    max_regenerations: int = field(
        default=64,
        metadata={
            "help": "Thinking with sampling: generate again, up to this many times, an answer without </think> or cut "
            "at max_new_tokens (the authors used 64)."
        },
    )
    vllm_tensor_parallel_size: int = field(default=1, metadata={"help": "vLLM tensor parallelism (the authors: 4)."})
    vllm_gpu_memory_utilization: float = field(default=0.9, metadata={"help": "vLLM GPU memory fraction."})
    vllm_max_model_len: int | None = field(default=None, metadata={"help": "vLLM context length (default: model's)."})
    # Metrics
    skip_metrics: list[str] = field(
        default_factory=list,
        metadata={
            "help": f"Clinical metrics to leave out knowingly ({', '.join(CLINICAL_METRICS)}); without this, a metric "
            "whose scorer weights are missing stops the evaluation before generation."
        },
    )
    scorer_device: str | None = field(default=None, metadata={"help": "Device of the clinical scorers (cuda if any)."})
    scorers_dir: str | None = field(
        default=None,
        metadata={"help": "Folder holding the clinical scorers' weights (default: the scorers' own cache)."},
    )
    green_model: str | None = field(
        default=None,
        metadata={"help": "GREEN judge (e.g. StanfordAIMI/GREEN-radllama2-7b); GREEN is scored only when given."},
    )
    n_bootstrap: int = field(default=2000, metadata={"help": "Bootstrap resamples for the 95% intervals."})
    bootstrap_seed: int = field(default=0, metadata={"help": "Seed of the bootstrap resamples (the authors: 0)."})
    num_box_figures: int = field(default=6, metadata={"help": "Grounding samples drawn with their boxes."})
    num_card_examples: int = field(
        default=3,
        metadata={
            "help": "Held-out grounding examples the card shows next to its tables: the image with the reference "
            "and predicted boxes, the question, the reference and the answer (0 for none)."
        },
    )
    # Output and Hub
    output_dir: str | None = field(
        default=None, metadata={"help": "Folder for predictions, metrics, tables and figures."}
    )
    overwrite: bool = field(
        default=False, metadata={"help": "Discard earlier predictions in output_dir instead of resuming from them."}
    )
    update_model_card: bool = field(
        default=True,
        metadata={
            "help": "When the model is a local folder with a radvlm-grpo card (README.md), merge the results into "
            "that card and copy the figures, metrics.json and results.md to its evaluation/ folder (what --push_to_hub "
            "does on the Hub). false: leave the model folder untouched."
        },
    )
    push_to_hub: bool = field(
        default=False, metadata={"help": "Merge the results into the model's Hub card and upload the figures."}
    )
    hub_model_id: str | None = field(
        default=None, metadata={"help": "Repo whose card gets the results (default: model_name_or_path)."}
    )
    hub_revision: str | None = field(default=None, metadata={"help": "Branch of hub_model_id to commit to."})

    def __post_init__(self) -> None:
        if self.report_prompt == "qwen3vl_baseline":
            self.report_prompt = QWEN3VL_BASELINE_REPORT_PROMPT
        for name in ("model_name_or_path", "dataset_name", "output_dir"):
            if not getattr(self, name):
                raise ValueError(f"--{name} is required.")
        unknown = sorted((set(self.tasks) | set(self.ood_tasks)) - set(GRPO_TASKS))
        if unknown:
            raise ValueError(f"Unknown task(s) {unknown}; evaluation knows {list(GRPO_TASKS)}.")
        unknown = sorted(set(self.skip_metrics) - set(CLINICAL_METRICS))
        if unknown:
            raise ValueError(
                f"Unknown metric(s) {unknown} in --skip_metrics; expected some of {list(CLINICAL_METRICS)}."
            )
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}; got {self.backend!r}.")
        for name in ("report_think_occurrence", "grounding_think_occurrence"):
            if getattr(self, name) not in (FIRST, LAST):
                raise ValueError(f"{name} must be 'first' or 'last'; got {getattr(self, name)!r}.")
        if self.box_scale <= 0:
            raise ValueError(f"box_scale must be positive; got {self.box_scale}.")
        if self.push_to_hub and not self.hub_model_id and not _is_hub_id(self.model_name_or_path):
            raise ValueError(
                "--push_to_hub with a local model folder needs --hub_model_id (the repo whose card to update)."
            )
        if self.max_regenerations < 0 or self.n_bootstrap < 1:
            raise ValueError("max_regenerations must be >= 0 and n_bootstrap >= 1.")
